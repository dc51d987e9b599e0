"""soundaq.base.layout.Below: the fixed places of a folder-owning class, read-only and computed from its root."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from soundaq.base.layout import Below


@dataclass
class _Run:
    out_dir: Path

    ckpt_dir = Below("out_dir", "checkpoints", "The checkpoints.")
    last = Below("ckpt_dir", "last.ckpt", "The latest checkpoint.")


def test_places_follow_their_base_and_cannot_be_set(tmp_path):
    run = _Run(tmp_path)
    assert run.ckpt_dir == tmp_path / "checkpoints" and run.last == tmp_path / "checkpoints" / "last.ckpt"
    run.out_dir = tmp_path / "other"                      # the places move with their base
    assert run.last == tmp_path / "other" / "checkpoints" / "last.ckpt"
    assert not (tmp_path / "other").exists()              # nothing is created on disk
    with pytest.raises(AttributeError, match=r"'last\.ckpt' is a fixed place below 'ckpt_dir'"):
        run.last = tmp_path / "x.ckpt"
    assert isinstance(_Run.last, Below) and _Run.last.__doc__ == "The latest checkpoint."
    assert repr(run) == f"_Run(out_dir={tmp_path / 'other'!r})"  # not dataclass fields

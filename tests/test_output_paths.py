"""Found by trying soundaq as a new user: an output folder that cannot be made (a file standing in its
path, a folder without permission) ended `predict`, `caption`, `compare` and `jury` in a traceback,
`predict` after all its predictions; every file soundaq wrote was owner-only (0600, from
``tempfile.mkstemp``) whatever the umask; and `jury` pointed at an ``issues.csv`` it never wrote when
it stopped for want of usable ratings. The kind, fixed: output folders go through
``soundaq.base.fileio.output_folder`` (checked before the work where a command can), the CLI turns any
remaining error on a path into one line, files get the umask's mode, a run that stops keeps its
issue list."""
from __future__ import annotations

import os
import stat

import openpyxl
import pytest
from caption_builders import random_rows, write_table
from input_builders import noise_wav, only_line, run_cli, write_jury

from soundaq.benchmark.cli import main

_run = run_cli


@pytest.fixture
def blocked(tmp_path):
    """An --out folder that cannot be made: a file stands where its parent folder should be."""
    in_the_way = tmp_path / "results.txt"
    in_the_way.write_text("a file, not a folder\n")
    return in_the_way / "run1"


def _cases(tmp_path):
    table = write_table(tmp_path / "pred.csv", random_rows(3, seed=1))
    books, key = write_jury(tmp_path / "jury", participants=3, clips=4)
    wav = noise_wav(tmp_path / "rec.wav", seconds=2.0)
    return {
        "predict": ["predict", wav, "--checkpoint", tmp_path / "never_read.ckpt", "--out"],
        "caption": ["caption", table, "--captioner", "template", "--out"],
        "compare": ["compare", f"{table}#clip_000", f"{table}#clip_001", "--no-signal", "--out"],
        "jury": ["jury", *books, "--key", key, "--no-figures", "--out"],
    }


@pytest.mark.parametrize("command", ["predict", "caption", "compare", "jury"])
def test_an_out_folder_that_cannot_be_made_is_one_line(tmp_path, capsys, blocked, command):
    argv = _cases(tmp_path)[command]
    code, _, err = _run(capsys, *argv, blocked)
    line = only_line(err)
    assert code == 2, err
    assert line.startswith(f"soundaq {command}: error: ") and str(blocked) in line and "fix:" in line
    assert not blocked.exists()
    if command == "predict":
        assert "never_read.ckpt" not in err      # said before the checkpoint is even looked at


def test_any_other_error_on_a_path_is_one_line_and_other_faults_stay_visible(tmp_path, capsys, monkeypatch):
    import soundaq.captions.run as run

    table = write_table(tmp_path / "pred.csv", random_rows(2, seed=2))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/srv/shared/captions.csv")

    monkeypatch.setattr(run, "caption_run", denied)
    code, _, err = _run(capsys, "caption", table, "--out", tmp_path / "caps")
    assert code == 2
    assert only_line(err) == ("soundaq caption: error: /srv/shared/captions.csv: Permission denied; fix: write to a "
                              "folder you may write to, or fix its permissions")

    def fault(*args, **kwargs):
        raise OSError("a fault of ours, with no path")

    monkeypatch.setattr(run, "caption_run", fault)
    with pytest.raises(OSError, match="a fault of ours"):
        main(["caption", str(table), "--out", str(tmp_path / "caps")])


def test_written_files_have_the_mode_a_plain_open_gives(tmp_path):
    from soundaq.base.fileio import atomic_write_text

    atomic_write_text(tmp_path / "ours.json", "{}\n")
    with open(tmp_path / "plain.json", "w") as fh:
        fh.write("{}\n")
    ours, plain = (stat.S_IMODE(os.stat(tmp_path / n).st_mode) for n in ("ours.json", "plain.json"))
    assert ours == plain
    assert ours & stat.S_IRGRP or os.umask(os.umask(0o022)) & 0o040   # group-readable unless the umask forbids it


def test_a_jury_without_usable_ratings_keeps_its_issue_list(tmp_path, capsys):
    books, key = write_jury(tmp_path / "jury", participants=2, clips=12)
    for book in books:              # the template as handed out: every rating cell empty
        wb = openpyxl.load_workbook(book)
        for row in wb.active.iter_rows(min_row=3, min_col=5, max_col=9):
            for cell in row:
                cell.value = None
        wb.save(book)
    out = tmp_path / "out"
    code, _, err = _run(capsys, "jury", *books, "--key", key, "--no-figures", "--out", out)
    assert code == 2
    assert "more issues (issues.csv in" in err and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert "no usable rating" in line and f"in {out / 'issues.csv'})" in line
    issues = (out / "issues.csv").read_text().splitlines()
    assert len(issues) - 1 > 20 and issues[0].startswith("workbook,sheet,cell,kind")

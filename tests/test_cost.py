"""The cost table (``soundaq models --cost``, soundaq.models_zoo.cost): MACs counted by torch's FlopCounterMode
against hand counts, the command's JSON keys and Markdown columns, the paper's figures in the registry."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from soundaq.benchmark.cli import main
from soundaq.models_zoo import cost, registry
from soundaq.models_zoo.registry import PAPER_OVERHEAD, build_net

PLUGINS = Path(__file__).resolve().parent / "plugins"
#: soundaq_toynet.ToyNet on one 30-s clip: Conv1d(64 -> 8, kernel 5) over 3001 frames, then the twelve heads
#: from 16 features (15 events + 3 scenes + ISOP + ISOE + 8 qualities = 28 outputs).
TOYNET_MACS = 3001 * 8 * 64 * 5 + 16 * 28


def test_count_macs_by_hand():
    assert cost.count_macs(nn.Linear(64, 10), torch.zeros(1, 3001, 64)) == 3001 * 64 * 10
    # 3x3 convolution, 1 -> 4 channels, padded: every output pixel takes 9 products
    assert cost.count_macs(nn.Conv2d(1, 4, 3, padding=1, bias=False), torch.zeros(1, 1, 10, 8)) == 10 * 8 * 4 * 9

    class Attention(nn.Module):
        def forward(self, q):
            return nn.functional.scaled_dot_product_attention(q, q, q)

    # q k^T and the weighted sum of v: 2 x heads x L x L x d (the CPU's fused kernel alone counts 0)
    assert cost.count_macs(Attention(), torch.zeros(1, 8, 128, 64)) == 2 * 8 * 128 * 128 * 64


def test_registry_net_macs_and_inputs():
    net = build_net("Hierarchical_CNN").eval()
    mel, loud = cost.clip_inputs("Hierarchical_CNN", 1)
    assert tuple(mel.shape) == (1, 3001, 64) and loud is None
    macs = cost.count_macs(net, mel, loud)
    assert macs > 1e9                     # five convolutions over the whole 3001 x 64 image
    _, loud = cost.clip_inputs("SoundAQnet", 2)
    assert tuple(loud.shape) == (2, 15000, 1)


@pytest.fixture
def toynet(monkeypatch):
    """The plug-in ToyNet importable (and forgotten by the registry afterwards)."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setattr(registry, "_PLUGINS", {})
    return "soundaq_toynet:ToyNet"


@pytest.mark.slow
def test_a_phase_runs_in_its_own_process(toynet):
    """The peak is the phase's own: it runs in a fresh spawned process (slow: importing torch there, 4-40 s
    on the shared machine; the fast command test below measures in this process)."""
    res = cost._run_isolated(toynet, "infer", 2, 0.0, "cpu", 1)
    assert res["macs"] == TOYNET_MACS and res["seconds"] > 0 and res["runs"] >= 1
    assert res["peak_mb"] is not None and res["peak_mb"] >= 0


def test_cost_command_json_and_markdown(toynet, monkeypatch, capsys):
    """One small net through the command (phases in this process, for speed); the MACs equal the hand count."""
    monkeypatch.setattr(cost, "_run_isolated", cost.measure_phase)
    rc = main(["models", "--cost", "--models", toynet, "--json", "--batch", "2", "--min-time", "0",
               "--threads", "1", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rows = json.loads(out)
    assert len(rows) == 1
    row = rows[0]
    for key in ("params", "macs", "train_s_per_clip", "train_peak_mb", "infer_s_per_clip", "infer_peak_mb", "device"):
        assert key in row, key
    assert row["model"] == "ToyNet" and row["macs"] == TOYNET_MACS and row["error"] is None
    assert row["params"] == sum(p.numel() for p in build_net(toynet).parameters())
    assert row["train_s_per_clip"] > 0 and row["infer_s_per_clip"] > 0
    assert row["train_peak_mb"] >= 0 and row["infer_peak_mb"] >= 0     # Linux: VmHWM
    assert row["device"].startswith("cpu: ") and "(1 thread)" in row["device"]
    assert row["batch"] == 2 and row["paper"] is None               # no published figures for a plug-in
    assert "[1/2] ToyNet training step" in err and "[2/2] ToyNet inference" in err

    paper_row = {**row, "model": "SoundAQnet", "paper": {**vars(PAPER_OVERHEAD["SoundAQnet"])}}
    text = cost.cost_markdown([row, paper_row])
    lines = text.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == list(cost.MARKDOWN_HEADER)
    assert header[1:4] == ["params", "paper params (M)", "MACs per clip (G)"]
    cells = [c.strip() for c in lines[3].strip("|").split("|")]
    assert len(cells) == len(header)
    assert cells[header.index("paper train time (s)")] == "0.000091"             # as the paper prints it
    assert cells[header.index("paper scene acc % (mean ± sd)")] == "95.31 ± 0.77"
    assert "MACs = FLOPs / 2" in text and "Tesla V100-SXM3-32GB" in text
    import re

    named = re.findall(r"`(\w+)` in --json", text)      # the notes sent users to `runs`, not a key (fault I)
    assert named and all(key in row for key in named), named


def test_cost_options_without_cost_and_unknown_model(capsys):
    assert main(["models", "--batch", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--batch go(es) with --cost" in err
    assert main(["models", "--cost", "--models", "NoSuchNet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'NoSuchNet'" in err


def test_paper_overhead_matches_the_release_table(reference):
    """The registry's published cost figures equal the transcription of the release's Table/overhead.png."""
    with open(reference / "paper_tables" / "model_overhead.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == registry.paper_nets() == list(PAPER_OVERHEAD)
    for r in rows:
        facts = vars(PAPER_OVERHEAD[r["model"]])
        assert facts == {k: pytest.approx(float(r[k]), abs=0) for k in facts}, r["model"]


def test_cost_models_take_variants_as_the_leaderboard_does(monkeypatch, capsys):
    """``--models`` is read by the one parser of the option (benchmark.options.models_from_arg): a variant's
    commas stay inside its brackets, and unbalanced brackets are one line, nothing measured."""
    seen: list[list[str]] = []
    monkeypatch.setattr(cost, "measure_cost", lambda names, **kw: seen.append(names) or [])
    assert main(["models", "--cost", "--models", "AD_CNN, SoundAQnet[blocks=2,dilation=1-1-1]", "--no-progress"]) == 0
    assert seen == [["AD_CNN", "SoundAQnet[blocks=2,dilation=1-1-1]"]]
    assert main(["models", "--cost", "--models", "SoundAQnet[blocks=2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unbalanced brackets" in err and len(seen) == 1


@pytest.mark.parametrize("value", ["", "  ", ",", " , "])
def test_an_empty_models_value_is_one_line_not_the_whole_zoo(value, monkeypatch, capsys):
    """``--models ""`` (an unset shell variable, say) names no model: one line and exit 2, nothing measured,
    rather than the whole zoo (the trial's fault A); the leaderboard reads the option through the same parser."""
    seen: list[list[str]] = []
    monkeypatch.setattr(cost, "measure_cost", lambda names, **kw: seen.append(names) or [])
    assert main(["models", "--cost", "--models", value, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "names no model" in err and "--models all" in err and seen == []
    assert main(["leaderboard", "--models", value, "--out", "/nonexistent/never-written"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "names no model" in err

"""The model registry and ``soundaq models [--json]``.

The paper's scores in the registry are checked against the 'Facts from the paper' table of the
reference README (parsed here), the parameter counts against the issue's list and against the built nets.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from soundaq.base.errors import UserError
from soundaq.base.vocab import QUALITIES
from soundaq.benchmark.cli import main
from soundaq.models_zoo import registry
from soundaq.models_zoo.registry import NETS, build_net, get_spec, list_nets, paper_nets

#: The issue's list of the originals' exact parameter counts: an independent reference for the registry's.
ISSUE_PARAMS = {"AD_CNN": 521_472, "Baseline_CNN": 1_009_900, "Hierarchical_CNN": 1_009_633,
                "MobileNetV2": 2_259_164, "YAMNet": 3_235_100, "CNN_Transformer": 12_293_996,
                "PANNs": 79_731_036, "SoundAQnet": 2_701_812}


def _paper_table(readme: str) -> dict[str, dict]:
    """Rows of the README's '| model | params (M) | scene acc % | event AUC | mean PAQ MSE |' table."""
    section = readme.split("## Facts from the paper", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("model", "") or set(cells[0]) <= {"-"}:
            continue
        name = re.sub(r"[ -]", "_", cells[0])
        num = [None if c == "-" else float(c) for c in cells[1:]]
        rows[name] = dict(zip(("params_m", "scene_acc", "event_auc", "paq_mse"), num))
    return rows


def test_names_and_order():
    assert list_nets()[:len(NETS)] == list(NETS) and paper_nets() == list(ISSUE_PARAMS)
    assert all(NETS[name].name == name for name in NETS)


def test_views_of_the_entries_agree_with_them():
    """The per-net tables other modules read are views of the entries, one per net that has the fact."""
    from soundaq.models_zoo import cpu_policy, pretrained_weights

    assert list(registry.PAPER_OVERHEAD) == [n for n, s in NETS.items() if s.paper_overhead]
    for name, runs in registry.PAPER_OVER_RUNS.items():
        row = NETS[name].paper_overhead
        assert runs["scene_acc"] == (row.scene_acc_pct_mean / 100, row.scene_acc_pct_sd / 100)
    assert cpu_policy.BF16_CPU_NETS == tuple(n for n, s in NETS.items() if s.cpu_bf16)
    assert cpu_policy.CHANNELS_LAST_CPU_GAIN == {n: s.channels_last_cpu_gain for n, s in NETS.items()
                                               if s.channels_last_cpu_gain}
    for name, spec in NETS.items():
        files = [r.file.name for r in pretrained_weights.RELEASES if r.model == name]
        assert files == [f.name for f in spec.releases]
        assert spec.released_weights == (files[0] if files else None)
        assert (name in pretrained_weights.UNPINNED) is (spec.weights_elsewhere is not None)
        if name in paper_nets():        # each of the paper's nets is released or published elsewhere
            assert (spec.weights_elsewhere is not None) is (not files)


def test_paper_scores_match_reference_readme(reference):
    readme = (reference / "README.md").read_text()
    table = _paper_table(readme)
    assert list(table) == paper_nets()       # the paper's nets, in its table order
    for name, row in table.items():
        spec = NETS[name]
        assert spec.params == ISSUE_PARAMS[name]
        assert spec.paper_params_m == row["params_m"]
        assert (spec.paper_scene_acc, spec.paper_event_auc, spec.paper_paq_mse) == (
            row["scene_acc"], row["event_auc"], row["paq_mse"]), name
        if row["params_m"] is not None:  # the paper prints millions, rounded
            assert abs(spec.params / 1e6 - row["params_m"]) < 1e-4
    per_paq = re.search(r"Per-PAQ MSE of SoundAQnet:(.*?)\.\n", readme, re.S).group(1)
    expected = {q: float(v) for q, v in re.findall(r"(\w+) ([\d.]+)", per_paq)}
    assert NETS["SoundAQnet"].paper_paq_mse_per_quality == expected
    assert list(expected) == list(QUALITIES)
    assert sum(expected.values()) / 8 == pytest.approx(NETS["SoundAQnet"].paper_paq_mse, abs=5e-4)


def test_unknown_name_is_a_user_error_listing_names():
    with pytest.raises(UserError, match=r"unknown model 'ResNet'.*AD_CNN, Baseline_CNN.*SoundAQnet"):
        build_net("ResNet")


def test_broken_target_fails_only_that_net(monkeypatch):
    broken = registry.NetSpec("Ghost", "soundaq.models_zoo.nets.does_not_exist:Ghost", (registry.INPUT_MEL,), 1,
                              None, None, None, None)
    monkeypatch.setitem(registry.NETS, "Ghost", broken)
    with pytest.raises(UserError, match=r"model Ghost: cannot import soundaq\.models_zoo\.nets\.does_not_exist"):
        build_net("Ghost")
    monkeypatch.setitem(registry.NETS, "Ghost", registry.NetSpec(
        "Ghost", "soundaq.models_zoo.nets.ad_cnn:Nope", (registry.INPUT_MEL,), 1, None, None, None, None))
    with pytest.raises(UserError, match="defines no class Nope"):
        build_net("Ghost")
    assert build_net("Baseline_CNN").__class__.__name__ == "BaselineCNN"


def test_models_json_counts_every_net(capsys):
    """`soundaq models --json --count` builds all eight nets: counts equal the originals'."""
    assert main(["models", "--json", "--count"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(NETS)
    for row in rows:
        assert row["params"] == row["params_counted"]
        assert row["name"] not in ISSUE_PARAMS or row["params"] == ISSUE_PARAMS[row["name"]]
        assert row["inputs"][0].startswith("log-mel")
        assert registry.net_class(row["name"]).uses_loudness is row["uses_loudness"]
        assert row["released_weights"] == NETS[row["name"]].released_weights
    assert [r["name"] for r in rows if r["uses_loudness"]] == ["SoundAQnet"]
    panns = next(r for r in rows if r["name"] == "PANNs")
    assert get_spec("PANNs").paper_scene_acc == panns["paper_scene_acc"] == 93.28
    assert panns["released_weights"] is None


def test_models_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in NETS:
        assert name in out
    assert "79,731,036" in out and "96.09" in out and "1.027" in out


def test_help_lists_commands_without_heavy_imports():
    code = ("import sys; from soundaq.benchmark.cli import build_parser; build_parser(); "
            "import soundaq.models_zoo.registry; "
            "heavy = [m for m in ('torch', 'lightning', 'pandas', 'matplotlib') if m in sys.modules]; "
            "print(heavy)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
    res = subprocess.run([sys.executable, "-m", "soundaq", "--help"], capture_output=True, text=True, check=True)
    assert re.search(r"^\s+models\s+list the model zoo", res.stdout, re.M)
    assert re.search(r"^\s+import-original\s+\S", res.stdout, re.M)


def test_piped_models_keeps_every_column():
    """Piped (stdout not a terminal, no COLUMNS), rich used to draw 80 columns and cut cells to "…"
    ("relea…", "mel+l…") or wrap them over lines (issue 26): every cell is now whole, one row a line."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    res = subprocess.run([sys.executable, "-m", "soundaq", "models"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "…" not in res.stdout
    lines = res.stdout.splitlines()
    row = next(line for line in lines if line.startswith("│ SoundAQnet "))
    for cell in ("mel+loudness", "2,701,812", "96.09", "released (4 variants)"):
        assert cell in row, (cell, row)
    assert any("weights" in line and "scene acc %" in line and "event AUC" in line for line in lines)
    assert max(len(line) for line in lines) > 80    # wider than rich's fallback: nothing was cut to fit 80


def test_a_net_added_to_the_project_table_leaves_the_paper_checks_alone(monkeypatch, capsys, reference):
    """docs/extending.md's route inside the project (one file plus one entry in the registry's table): a ninth
    entry without the paper's facts is listed and built, and the checks of the paper's facts (this file's,
    the released weights') hold unedited."""
    import dataclasses

    from soundaq.models_zoo import pretrained_weights as pw

    ninth = dataclasses.replace(NETS["AD_CNN"], name="NinthNet", paper_params_m=None, paper_scene_acc=None,
                                paper_event_auc=None, paper_paq_mse=None, paper_paq_mse_per_quality=None,
                                releases=(), weights_elsewhere=None, paper_overhead=None, cpu_bf16=False,
                                channels_last_cpu_gain=None, notes="a ninth net in the project's table")
    monkeypatch.setitem(registry.NETS, "NinthNet", ninth)
    assert paper_nets() == list(ISSUE_PARAMS) and list(NETS)[-1] == "NinthNet"
    test_names_and_order()
    test_views_of_the_entries_agree_with_them()
    test_paper_scores_match_reference_readme(reference)
    test_models_json_counts_every_net(capsys)
    test_models_table(capsys)
    for name in paper_nets():
        assert (name in pw.UNPINNED) != any(r.model == name for r in pw.RELEASES)

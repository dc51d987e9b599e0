"""SoundAQnet's ablation variants: the facts measured on the release's classes, the name grammar,
one training step and a prediction of every variant, and the loss weighting setting.

The outputs were checked equal to the release's classes outside the suite (the release's code needs dgl
and is not part of the project; docs/ablations.md says how); what that check measured is kept here:
parameter counts (as the release class counts them, and those its forward uses) and the number of
state-dict entries, every one a key of the release class's state dict.
"""
from __future__ import annotations

import pytest
import torch

from soundaq.base.errors import UserError
from soundaq.benchmark.cli import main
from soundaq.models_zoo.losses import LOSS_WEIGHTINGS, TASKS, MultiTaskLoss, parse_loss_weighting
from soundaq.models_zoo.module import SoundscapeModule
from soundaq.models_zoo.outputs import NetOutput
from soundaq.models_zoo.registry import build_net, count_params, get_spec, is_known, split_model_list
from soundaq.models_zoo.variants import RELEASE_VARIANTS, families, parse

# The release's own counts (SoundAQnet_different_kernels ... SoundAQnet_CLAP_AFF), and the keys of the
# graph layers of its dilation and blocks classes (3 gated GCN layers; the paper's net has 1).
RELEASE_KEYS_ALL_BRANCHES = 391


@pytest.mark.parametrize("name", list(RELEASE_VARIANTS))
def test_release_variants_have_the_measured_layout(name):
    release_class, release_params, used, entries = RELEASE_VARIANTS[name]
    net = build_net(name)
    assert count_params(net) == used == get_spec(name).params
    assert len(net.state_dict()) == entries
    if "kernels=" in name:      # the release's subset classes define all four branches
        assert release_params > used and release_class.split(":")[1].startswith("SoundAQnet_S")
        kept = name[name.index("=") + 1:-1].split("+")
        assert sorted(n[len("mel_k"):] for n in net.node_names if n.startswith("mel_")) == sorted(kept)
        assert net.fc_all_nodes_to_classification_embeddings.in_features == 64 * 2 * len(kept)
    else:
        assert release_params == used


def test_layout_facts_of_the_release():
    """Facts read off the release's classes: frequency widths into k_{k}_freq_to_1, graph layers, node width."""
    b4, b5, b2 = build_net("SoundAQnet[blocks=4]"), build_net("SoundAQnet[blocks=5]"), build_net("SoundAQnet[blocks=2]")
    assert [getattr(b4, f"k_{k}_freq_to_1").in_features for k in (3, 5, 7, 9)] == [6, 2, 2, 12]
    assert [getattr(b5, f"k_{k}_freq_to_1").in_features for k in (3, 5, 7, 9)] == [2, 4, 4, 3]
    assert [getattr(b2, f"k_{k}_freq_to_1").in_features for k in (3, 5, 7, 9)] == [14] * 4
    assert (b2.embedding_h.in_features, b4.embedding_h.in_features, b5.embedding_h.in_features) == (32, 128, 256)
    assert b4.fc_residual_mel_k3.in_features == 128 + 64
    assert len(build_net("SoundAQnet[dilation=1-1-1]").layers) == 3 == len(b2.layers)
    assert len(build_net("SoundAQnet").layers) == 1
    assert build_net("SoundAQnet[dilation=2-3-5]").conv_block1.conv1.dilation == (2, 1)
    aff = build_net("SoundAQnet_AFF")
    assert aff.clap_fusion_mel.local_att[0].out_channels == 16


@pytest.mark.parametrize("given, canonical", [
    ("SoundAQnet[kernels=5+3]", "SoundAQnet[kernels=3+5]"),
    ("SoundAQnet[ dilation = 1-3-5 , blocks=2 ]", "SoundAQnet[blocks=2,dilation=1-3-5]"),
    ("SoundAQnet[blocks=3,dilation=1-2-3,kernels=3+5+7+9]", "SoundAQnet"),
    ("SoundAQnet_AFF", "SoundAQnet_AFF"),
])
def test_names_are_made_canonical(given, canonical):
    assert get_spec(given).name == canonical
    assert is_known(given)


@pytest.mark.parametrize("bad, says", [
    ("SoundAQnet[kernels=]", "an empty kernel subset"),
    ("SoundAQnet[kernels=3+4]", "subset of 3, 5, 7, 9"),
    ("SoundAQnet[kernels=3+3]", "subset of 3, 5, 7, 9"),
    ("SoundAQnet[block=2]", "the keys are kernels"),
    ("SoundAQnet[blocks=6]", "2, 3, 4 or 5"),
    ("SoundAQnet[dilation=1-2]", "1-1-1, 1-2-3, 1-2-5, 1-3-5, 2-3-5"),
    ("SoundAQnet[blocks=2,blocks=4]", "given twice"),
    ("SoundAQnet_AFF[blocks=2]", "takes no settings"),
    ("SoundAQnet[kernels=3", "a missing `]`"),         # trial fault F: these were "unknown model"
    ("SoundAQnet[kernels=3]]", "an unmatched `]`"),
    ("SoundAQnet]", "an unmatched `]`"),
    ("SoundAQnet[[kernels=3]]", "unbalanced or misplaced"),
    ("SoundAQnet[kernels=3]x", "unbalanced or misplaced"),
    ("Soundaqnet[kernels=3]", r"spelt SoundAQnet; fix: write SoundAQnet\[kernels=3\]"),
    ("AD_CNN[blocks=2]", "with SoundAQnet only, not 'AD_CNN'"),
])
def test_bad_variants_are_one_line(bad, says):
    with pytest.raises(UserError, match=says) as info:
        get_spec(bad)
    assert "\n" not in str(info.value)


def test_model_lists_keep_commas_inside_brackets():
    assert split_model_list("AD_CNN, SoundAQnet[blocks=2,dilation=1-1-1],SoundAQnet_AFF") == [
        "AD_CNN", "SoundAQnet[blocks=2,dilation=1-1-1]", "SoundAQnet_AFF"]
    with pytest.raises(UserError, match="unbalanced"):
        split_model_list("SoundAQnet[blocks=2")
    assert parse("AD_CNN") is None


def test_train_refuses_a_bad_variant_in_one_line(capsys, tmp_path):
    assert main(["train", "--model", "SoundAQnet[dilation=9-9-9]", "--data", "embedded",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "1-1-1, 1-2-3" in err


def test_models_json_lists_the_families(capsys):
    assert main(["models", "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    fams = rows[-1]["variant_families"]
    assert fams == families()
    assert fams[0]["keys"]["blocks"] == [2, 3, 4, 5]
    named = {v["name"]: v for f in fams for v in f["variants"]}
    assert named["SoundAQnet[kernels=3]"]["release_params"] == 2_505_204
    assert named["SoundAQnet_AFF"]["params"] == 2_715_540


def test_plain_text_tables_keep_the_variant_names(capsys):
    """rich read ``[kernels=3+5]`` as a style tag and dropped it (trial fault B): ``soundaq models``' footer
    and the leaderboard's and the seeds grid's tables print every name with its brackets."""
    from soundaq.benchmark.leaderboard.report import print_table
    from soundaq.benchmark.leaderboard.seeds_report import print_table as print_grid

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("SoundAQnet[kernels=3+5]", "SoundAQnet[blocks=2|4|5]", "SoundAQnet[blocks=2,dilation=1-1-1]"):
        assert name in out
    row = {"rank": 1, "model": "SoundAQnet[kernels=3+5]", "status": "ok"}
    print_table([row], "data [x]", title="run [seed=1]")
    entry = {"rank": 1, "model": "SoundAQnet[blocks=2,dilation=1-1-1]", "mean": {}, "sd": {}, "ci95_low": {},
             "ci95_high": {}, "n_seeds": 2, "first": 1, "status": "ok"}
    print_grid([{"summary": entry}], "grid [seeds=0-1]")
    out = capsys.readouterr().out
    assert "SoundAQnet[kernels=3+5]" in out and "run [seed=1]" in out
    assert "SoundAQnet[blocks=2,dilation=1-1-1]" in out and "grid [seeds=0-1]" in out


def _batch(n: int, frames: int, samples: int) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"mel": torch.randn(n, frames, 64, generator=g), "loudness": torch.randn(n, samples, 1, generator=g),
            "scene": torch.tensor([0, 2]), "events": torch.randint(0, 2, (n, 15), generator=g).float(),
            "qualities": torch.randn(n, 8, generator=g), "isop": torch.randn(n, generator=g),
            "isoe": torch.randn(n, generator=g)}


# One cheap net per setting value (the k = 3 branch alone, at the shortest input each accepts) keeps the
# fast suite to seconds; every named variant of the release in full is the slow test below.
FAST = ["SoundAQnet[kernels=3]", "SoundAQnet[kernels=3,blocks=2,dilation=1-1-1]",
        "SoundAQnet[kernels=3,blocks=4,dilation=2-3-5]", "SoundAQnet[kernels=3,blocks=5,dilation=1-2-5]",
        "SoundAQnet[kernels=3+5,blocks=2,dilation=1-3-5]"]


@pytest.mark.parametrize("name", FAST)
def test_variants_train_one_step_and_predict(name):
    _one_step_and_predict(name)


def test_aff_predicts_and_a_batch_of_one_trains():
    """SoundAQnet_AFF (all four kernels: its training step is in the slow test) predicts; its fusion
    doubles a batch of one for the batch norms, as the release does."""
    net = build_net("SoundAQnet_AFF").eval()
    with torch.no_grad():
        out = net(torch.randn(1, net.min_frames, 64), torch.randn(1, net.min_loudness_samples, 1))
    assert out.qualities.shape == (1, 8) and torch.isfinite(out.qualities).all()
    fuse = net.clap_fusion_mel.train()
    x, r = torch.randn(1, 64, 5, 1), torch.randn(1, 64, 5, 1)
    assert fuse(x, r).shape == (1, 64, 5, 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RELEASE_VARIANTS))
def test_every_release_variant_trains_one_step_and_predicts(name):
    _one_step_and_predict(name)


def _one_step_and_predict(name: str) -> None:
    torch.manual_seed(0)
    module = SoundscapeModule(name, loss_weights=LOSS_WEIGHTINGS["release-2"])
    net = module.net
    batch = _batch(2, net.min_frames, net.min_loudness_samples)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    before = net.fc_all_nodes_to_classification_embeddings.weight.detach().clone()
    module.train()
    total, parts = module.loss(net(batch["mel"], batch["loudness"]), batch)
    total.backward()
    optimizer.step()
    assert torch.isfinite(total) and set(parts) == set(TASKS)
    assert not torch.equal(before, net.fc_all_nodes_to_classification_embeddings.weight)
    module.eval()
    with torch.no_grad():
        out = net(batch["mel"][:1], batch["loudness"][:1])
    assert out.scene_logits.shape == (1, 3) and out.qualities.shape == (1, 8)
    assert all(torch.isfinite(v).all() for v in out.as_dict().values())
    with pytest.raises(ValueError, match="mel frames"):
        net(batch["mel"][:, : net.min_frames - 1], batch["loudness"])


def test_loss_weighting_parses_the_release_schemes_and_lists():
    assert parse_loss_weighting("uncertainty") == "uncertainty"
    assert parse_loss_weighting("equal") is None
    assert parse_loss_weighting("release-3") == (1.0, 1.0) + (0.5,) * 10
    assert parse_loss_weighting("1,1,1,1,.5,.5,.5,.5,.5,.5,.5,.5") == LOSS_WEIGHTINGS["release-2"]
    for bad, says in (("1,2,3", "3 weights, need 12"), ("half", "not a scheme"), (",".join(["-1"] * 12), ">= 0"),
                      (",".join(["0"] * 12), "every weight is 0"), (",".join(["0.0"] * 12), "nothing is learnt")):
        with pytest.raises(ValueError, match=says) as info:
            parse_loss_weighting(bad)
        assert "scene, events, isop, isoe, pleasant" in str(info.value) and "\n" not in str(info.value)


def test_fixed_weights_weight_each_task_and_equal_is_the_plain_sum():
    out = NetOutput(scene_logits=torch.randn(4, 3), event_logits=torch.randn(4, 15), qualities=torch.randn(4, 8),
                    isop=torch.randn(4), isoe=torch.randn(4))
    batch = {k: v for k, v in _batch(4, 1, 1).items() if k not in ("mel", "loudness")}
    batch["scene"] = torch.tensor([0, 1, 2, 0])
    plain, parts = MultiTaskLoss()(out, batch)
    assert torch.equal(plain, torch.stack(list(parts.values())).sum())
    weights = tuple(float(i + 1) for i in range(12))
    weighted, _ = MultiTaskLoss(weights=weights)(out, batch)
    assert torch.allclose(weighted, sum(w * parts[t] for w, t in zip(weights, TASKS)))
    with pytest.raises(ValueError, match="need 12"):
        MultiTaskLoss(weights=(1.0,) * 11)
    with pytest.raises(ValueError, match="every weight is 0"):
        MultiTaskLoss(weights=(0.0,) * 12)


def test_train_refuses_a_wrong_weight_count_in_one_line(capsys, tmp_path):
    assert main(["train", "--model", "AD_CNN", "--data", "embedded", "--loss-weighting", "1,1",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2 weights, need 12" in err
    assert main(["train", "--model", "AD_CNN", "--data", "embedded", "--loss-weighting", ",".join(["0"] * 12),
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "every weight is 0" in err and not (tmp_path / "run").exists()


def _csv_rows(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _same(ours, theirs: str) -> bool:
    if isinstance(ours, str):
        return ours == theirs
    return abs(float(ours) - float(theirs)) < 1e-9


def test_paper_ablation_facts_equal_the_transcribed_tables(reference):
    """PAPER_ABLATIONS (the project's copy of the paper's ablation tables) against the CSV transcriptions
    in ../shared/reference/paper_tables, column for column in the release's order."""
    from soundaq.models_zoo.variants import PAPER_ABLATIONS, PAPER_COLUMNS, paper_scores

    tables = reference / "paper_tables"
    for study, file in (("kernels", "soundaqnet_kernels.csv"), ("blocks", "soundaqnet_blocks.csv"),
                        ("dilation", "soundaqnet_dilation.csv")):
        rows = _csv_rows(tables / file)
        ours = list(PAPER_ABLATIONS[study].values())
        assert len(rows) == len(ours)
        for row, mine in zip(rows, ours):
            if study == "dilation":
                row["dilation"] = "-".join(row[f"dilation_{n}"] for n in ("1st", "2nd", "3rd"))
            for column, value in zip(PAPER_COLUMNS[study], mine):
                assert _same(value, row[column]), (study, column, value, row[column])
    for row, (scheme, lambdas, acc, auc, mse) in zip(_csv_rows(tables / "soundaqnet_loss_weighting.csv"),
                                                      PAPER_ABLATIONS["loss-weighting"].values()):
        assert (float(row["scene_acc_pct"]), float(row["event_auc"]), float(row["aq_mse_mean"])) == (acc, auc, mse)
        printed = [row[f"lambda_{i}"] for i in range(1, 13)]
        assert (lambdas is None) == (row["scheme"] == "uncertainty")
        if lambdas is not None:
            assert tuple(float(x) for x in printed) == lambdas == LOSS_WEIGHTINGS[scheme]
    assert paper_scores("SoundAQnet[blocks=4]") == (95.60, 0.938, 1.058)
    assert get_spec("SoundAQnet[kernels=3]").paper_scene_acc == 93.67
    assert get_spec("SoundAQnet[kernels=3,blocks=2]").paper_scene_acc is None


class _Outcome:
    def __init__(self, rows, failed=(), seeds=""):
        self.rows, self.failed, self.seeds = rows, list(failed), seeds


def test_ablation_tables_follow_the_release_columns(tmp_path):
    """`soundaq ablation`'s table: the paper's rows in order, our scores beside the paper's, a failed run blank."""
    from soundaq.benchmark.ablation import run_study, study_runs

    seen = []

    def runner(settings):
        seen.append(settings)
        rows = [{"model": m, "status": "ok", "scene_acc": 0.5 + 0.01 * i, "event_auc": 0.7, "aq_mse_mean": 1.2,
                 "params": get_spec(m).params, "data": "synthetic", "synthetic": True}
                for i, m in enumerate(settings["models"]) if m != "SoundAQnet[blocks=5]"]
        return _Outcome([*rows, {"model": "reference", "status": "reference"}], ["SoundAQnet[blocks=5]"])

    table, failed = run_study("blocks", lambda models, folder, scheme: {"models": models, "out": folder,
                                                                       "loss": scheme}, tmp_path, runner=runner,
                              macs=lambda m: 2_000_000_000 + 1_000_000 * len(m))
    assert failed == ["SoundAQnet[blocks=5]"] and seen[0]["out"] == tmp_path / "blocks"
    lines = (tmp_path / "ablation_blocks.csv").read_text().splitlines()
    assert lines[0] == ("model,blocks,conv2d_layers,paper params_m,paper train_batch_size,paper train_gpu_memory_gb,"
                        "paper gpu_device,ours scene_acc_pct,paper scene_acc_pct,ours event_auc,paper event_auc,"
                        "ours aq_mse_mean,paper aq_mse_mean,ours params,ours gmacs")
    assert lines[1].startswith("SoundAQnet[blocks=2],2,4,1.53,")
    assert lines[1].endswith(",50,93.46,0.7,0.926,1.2,1.092,1538136,2.02")
    assert "| 1,538,136 | 2.02 |" in table.read_text()
    assert lines[4].startswith("SoundAQnet[blocks=5],5,10,25.92") and lines[4].endswith(",,95.44,,0.933,,1.06,,")
    assert "synthetic: not comparable" in table.read_text()
    assert [r[0] for r in study_runs("loss-weighting")] == [f"loss-weighting/{s}" for s in
                                                            ("release-1", "release-2", "release-3", "uncertainty")]


def test_ablation_kernels_table_gives_mean_sd_over_seeds_and_both_parameter_counts(tmp_path):
    """Over several seeds a score reads ``mean ± sd`` in Markdown and two numeric columns in the CSV; the
    kernels table has the release class's parameter count too."""
    import pandas as pd

    from soundaq.benchmark.ablation import run_study

    def runner(settings):
        rows = [{"model": m, "status": "ok", "scene_acc": 0.6, "event_auc": 0.8, "aq_mse_mean": 0.5, "n_seeds": 2,
                 "summary": {"sd": {"scene_acc": 0.05, "event_auc": 0.01}}, "params": get_spec(m).params}
                for m in settings]
        return _Outcome(rows, seeds="0-1")

    table, _ = run_study("kernels", lambda models, folder, scheme: models, tmp_path, runner=runner,
                         macs=lambda m: 5 * 10**8)
    frame = pd.read_csv(tmp_path / "ablation_kernels.csv")
    assert list(frame.columns[5:9]) == ["ours scene_acc_pct", "ours scene_acc_pct sd", "paper scene_acc_pct",
                                        "ours event_auc"]
    numeric = [c for c in frame.columns if c.startswith("ours") or c == "release class params"]
    assert all(pd.api.types.is_numeric_dtype(frame[c]) for c in numeric)
    first = frame.iloc[0]
    assert (first["ours scene_acc_pct"], first["ours scene_acc_pct sd"], first["ours event_auc sd"]) == (60, 5, 0.01)
    assert (first["ours params"], first["release class params"], first["ours gmacs"]) == (1053410, 2505204, 0.5)
    assert frame.iloc[-1]["release class params"] == 2701812
    text = table.read_text()
    assert "| SoundAQnet[kernels=3] | 3 | S1 | 2 | 0.76 | 60 ± 5 | 93.67 | 0.8 ± 0.01 | 0.913 |" in text
    assert "mean ± sd (n - 1) over the training seeds 0-1" in text and "| 1,053,410 | 2,505,204 | 0.5 |" in text


def test_leaderboard_refuses_a_bad_loss_weighting_before_training(capsys, tmp_path):
    assert main(["leaderboard", "--models", "AD_CNN", "--loss-weighting", "1,1,1", "--out", str(tmp_path / "lb")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "3 weights, need 12" in err
    assert not (tmp_path / "lb" / "models").exists()


def test_a_validation_beyond_the_rating_scale_is_flagged_as_diverged():
    """SoundAQnet_AFF on a small budget ended at val/isop_mse 708 with `diverged: null` (trial fault D): a
    validation error larger than any prediction within the scale can make (16 for a quality, 4 for ISOP/ISOE)
    now fills train.json's `diverged`, and a leaderboard row says why."""
    from soundaq.benchmark.leaderboard.table import table_row
    from soundaq.models_zoo.rating_scale import exploded_validation
    from soundaq.models_zoo.training import _validation_diverged

    assert exploded_validation({"val/isop_mse": 3.99, "val/aq_mse_mean": 15.9, "val/scene_acc": 99.0}) is None
    assert exploded_validation({"val/isop_mse": 708.58}) == {"metric": "isop_mse", "value": 708.58, "bound": 4.0}
    assert exploded_validation({"mse_calm": 16.5})["bound"] == 16.0
    assert exploded_validation({"aq_mse_mean": float("nan")})["metric"] == "aq_mse_mean"
    assert _validation_diverged({"val/isop_mse": 0.2}, [{"step": 2, "isop_mse": 0.3, "precise_bn": True}], 2) is None
    flagged = _validation_diverged({"val/isop_mse": 0.2}, [{"step": 2, "isop_mse": 708.58}], 2)
    assert flagged is not None and flagged["step"] == 2 and flagged["validation"]["metric"] == "isop_mse"
    row = table_row("SoundAQnet_AFF", {"diverged": flagged, "scores": {}}, None, "embedded", True)
    assert row["status"] == "diverged" and "validation diverged: isop_mse 708.6 at step 2 exceeds 4" in row["reason"]


def test_train_says_a_validation_divergence_on_the_terminal(monkeypatch, capsys, soundaq_cache, tmp_path):
    from types import SimpleNamespace

    from soundaq.models_zoo import training

    exploded = {"step": 2, "loss": "validation isop_mse 708.58", "first_loss": None,
                "validation": {"metric": "isop_mse", "value": 708.58, "bound": 4.0}}
    result = SimpleNamespace(best_score=None, already_done=False, diverged=exploded, stopped_early=False, resumed=False,
                             record={"monitor": "val/isop_mse", "curve": [{"isop_mse": 708.58}]},
                             metrics={"val/isop_mse": 708.58}, epochs=1, train_seconds=1.0, best_checkpoint="x.ckpt")
    monkeypatch.setattr(training, "train_model", lambda *a, **kw: result)
    assert main(["train", "--model", "AD_CNN", "--data", "embedded", "--embedded-clips", "12", "--cache-dir",
                 str(soundaq_cache), "--schedule", "embedded", "--zero-head-bias", "--no-progress",
                 "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "DIVERGED: validation isop_mse 708.6 exceeds 4" in err and "final val/isop_mse 708.5800" in err

"""Field cases F3-08, F3-09, F3-16 and F3-18 of ../shared/field-cases (issue 26) through the current code,
each with its right value, and the other faults of the same kinds: caption text the metric packages
mishandle, damaged resources the metrics need, a machine that runs out of disk or is read-only, and
spreadsheets that are not plain .xlsx. The inputs are read in place, never copied into the project."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from soundaq.benchmark.cli import main
from soundaq.evaluation.captions.inputs import caption_text

#: Standard metrics without METEOR (its jar takes ~20 s to start; the slow caption test covers it).
NO_METEOR = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D"]


def _cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _java():
    from soundaq.evaluation.captions.standard import find_java

    java, why = find_java()
    if java is None:
        pytest.skip(f"no Java for the COCO tools: {why}")
    return java


def _standard(tmp_path, name, cands, refs):
    """per_clip.csv of the standard flavour (no METEOR) of ``cands`` against ``refs``, indexed by clip."""
    from soundaq import caption_metrics

    res = caption_metrics(tmp_path / name, cands, refs, flavour="standard", n_resamples=20, figures=False,
                          progress=False, standard_metrics=NO_METEOR, echo_err=lambda s: None)
    return res["per_clip"].set_index("clip"), res


# ---------------------------------------------------------------------------------------- F3-08
def test_f3_08_line_break_in_a_caption_cell_scores_as_the_one_line_file(field_cases_dir, tmp_path):
    """A CR LF inside 1.wav's quoted caption: 6.flac and 10.flac, whose captions are the same in both
    files, get the same standard scores (CIDEr-D was 0.000 against 2.653)."""
    _java()
    subprocess.run([sys.executable, str(field_cases_dir / "F3-08" / "gen_captions.py"), str(tmp_path / "in")],
                   check=True)
    src = tmp_path / "in"
    assert b"talking.\r\nIt feels" in (src / "candidates.csv").read_bytes()          # the case holds
    cr, res = _standard(tmp_path, "cr", src / "candidates.csv", src / "refs.csv")
    flat, _ = _standard(tmp_path, "flat", src / "candidates_flat.csv", src / "refs.csv")
    cols = [f"standard/{m}" for m in NO_METEOR]
    assert cr.loc[["6.flac", "10.flac"], cols].to_numpy() == pytest.approx(flat.loc[["6.flac", "10.flac"], cols].to_numpy())
    assert flat.loc["6.flac", "standard/CIDEr-D"] == pytest.approx(2.653, abs=5e-4)
    assert cr.loc["1.wav", "caption"] == flat.loc["1.wav", "caption"]                # the break read as a space
    assert len(res["issues"]) == 0


def test_every_break_and_invisible_character_reads_as_a_space(tmp_path):
    """The kind behind F3-08: each character the PTB tokenizer (or a later reader) takes for a line end,
    and the invisible ones, inside a caption scores like a plain space."""
    _java()
    breaks = {"lf": "\n", "cr": "\r", "crlf": "\r\n", "tab": "\t", "vt": "\x0b", "ff": "\x0c", "nel": "\x85",
              "ls": "\u2028", "ps": "\u2029", "nbsp": "\u00a0", "zwsp": "\u200b", "ctrl": "\x01", "bom": "\ufeff"}
    base = ["birds sing in the quiet park", "cars pass on the busy road", "people talk on the square"]
    cands = [("clip,system,caption", "clip,system,caption")]
    refs = ["clip,caption"]
    for i, (name, ch) in enumerate(breaks.items()):
        words = base[i % 3].split(" ")
        odd = f'"{words[0]} {words[1]}{ch}{" ".join(words[2:])}"'
        cands.append((f"{name}.wav,s,{odd}", f"{name}.wav,s,{' '.join(words)}"))
        refs.append(f"{name}.wav,{base[(i + 1) % 3] if i % 4 == 0 else base[i % 3]}")
    (tmp_path / "odd.csv").write_text("\n".join(c[0] for c in cands) + "\n", encoding="utf-8", newline="")
    (tmp_path / "flat.csv").write_text("\n".join(c[1] for c in cands) + "\n", encoding="utf-8", newline="")
    (tmp_path / "refs.csv").write_text("\n".join(refs) + "\n", encoding="utf-8")
    odd, _ = _standard(tmp_path, "odd", tmp_path / "odd.csv", tmp_path / "refs.csv")
    flat, _ = _standard(tmp_path, "flat", tmp_path / "flat.csv", tmp_path / "refs.csv")
    cols = [f"standard/{m}" for m in NO_METEOR]
    assert list(odd.index) == list(flat.index) and len(odd) == len(breaks)
    assert odd[cols].to_numpy() == pytest.approx(flat[cols].to_numpy())
    assert (odd["caption"] == flat["caption"]).all()


def test_caption_text_rule():
    assert caption_text("A park.\r\n\r\nBirds\u2028sing.\t\x0c") == "A park. Birds sing."
    assert caption_text("in\u00adside the\u00a0park") == "inside the park"
    assert caption_text("The cat sat. ") == "The cat sat. "        # ordinary spaces kept as written (paper ROUGE-L)
    assert caption_text("\u200b\n") == ""


@pytest.mark.parametrize("flavour", ["paper", "standard"])
def test_a_caption_without_a_word_is_excluded_in_every_flavour(flavour, tmp_path, capsys):
    """One rule for both flavours: ``...`` (nothing left once tokenised) is excluded and named in
    issues.csv; the standard flavour alone used to score it 0 while the paper one excluded it."""
    if flavour == "standard":
        _java()
    cands = tmp_path / "c.csv"
    cands.write_text("clip,system,caption\na,s,birds in a park\nb,s,...\nc,s,cars on a road\n", encoding="utf-8")
    refs = tmp_path / "r.csv"
    refs.write_text("clip,caption\na,a park with birds\nb,people talk\nc,a road with cars\nc,!!\n", encoding="utf-8")
    from soundaq import caption_metrics

    res = caption_metrics(tmp_path / "o", cands, refs, flavour=flavour, n_resamples=20, figures=False,
                          progress=False, standard_metrics=NO_METEOR, echo_err=lambda s: None)
    assert sorted(res["per_clip"]["clip"]) == ["a", "c"]
    issues = pd.read_csv(tmp_path / "o" / "issues.csv")
    assert sorted(zip(issues["file"], issues["kind"])) == [("c.csv", "no_words"), ("r.csv", "no_words")]
    assert res["exit_code"] == 1
    assert (res["per_clip"]["n_references"] == 1).all()

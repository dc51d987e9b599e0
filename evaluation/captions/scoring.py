"""Score candidate captions against references in one or both flavours, with bootstrap statistics.

The unit of resampling is the clip. Per system and metric, ``summary`` gives the mean of the
per-clip values with its percentile bootstrap CI (:func:`soundaq.evaluation.bootstrap.mean_ci`) and,
for the standard flavour, the corpus-level value DCASE reports (for BLEU and METEOR it is not the
mean of per-clip values). ``paired`` compares every two systems on the clips both captioned
(:func:`soundaq.evaluation.bootstrap.paired_mean_diff`).
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from soundaq.evaluation.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, mean_ci, paired_mean_diff
from soundaq.evaluation.captions import paper, standard
from soundaq.evaluation.captions.inputs import Caption, IssueList
from soundaq.evaluation.captions.paper import Availability

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

FLAVOURS = ("paper", "standard")
#: Columns of per_clip.csv before the metric columns.
ID_COLUMNS = ("clip", "system", "n_references", "file", "row", "caption")


def label(flavour: str, metric: str) -> str:
    """The flavour-labelled metric name used in every table and figure (``paper/BLEU``)."""
    return f"{flavour}/{metric}"


def flavours_of(choice: str) -> tuple[str, ...]:
    """The flavours a ``--flavour`` choice names: ``both`` is :data:`FLAVOURS`, else just that one."""
    return FLAVOURS if choice == "both" else (choice,)


@dataclass
class CaptionScores:
    """Everything ``soundaq caption-metrics`` reports about one set of candidates."""

    per_clip: pd.DataFrame                 # ID_COLUMNS + one column per labelled metric
    corpus: dict[tuple[str, str], float]   # (system, label) -> corpus-level value (standard flavour)
    metrics: list[str]                     # labelled metrics that were computed, in report order
    unavailable: dict[str, str] = field(default_factory=dict)   # label -> one-line reason
    notes: dict[str, str] = field(default_factory=dict)         # e.g. which Java / WordNet was used
    faults: set[str] = field(default_factory=set)               # unavailable labels whose component is damaged


@dataclass
class _ScoreRun:
    """What :func:`score_captions` gathers while it runs each flavour over the N pairs."""

    n: int
    metrics: list[str] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    corpus: dict[tuple[str, str], float] = field(default_factory=dict)
    faults: set[str] = field(default_factory=set)
    keep: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keep = [True] * self.n

    def offer(self, lab: str, available: Availability) -> None:
        """Add ``lab`` to the metrics (NaN per pair until scored) when available, else say why not."""
        if available.available:
            self.metrics.append(lab)
            self.values[lab] = [np.nan] * self.n
        else:
            self.unavailable[lab] = available.reason
            if available.fault:
                self.faults.add(lab)

    def drop(self, lab: str, reason: str) -> None:
        """Drop a metric given up during the run, for every clip (a damaged component: a fault)."""
        self.metrics.remove(lab)
        self.values.pop(lab, None)
        self.unavailable[lab] = reason
        self.faults.add(lab)


def score_captions(pairs: list[tuple[Caption, str, list[str]]], flavour: str, issues: IssueList,
                   standard_metrics: Sequence[str] | None = None, progress: bool = False) -> CaptionScores:
    """Score ``(candidate, reference clip, [reference texts])`` triples.

    Args:
        pairs: from :func:`soundaq.evaluation.captions.inputs.pair_with_references`.
        flavour: ``paper``, ``standard`` or ``both``.
        issues: unscorable captions are added here (and left out).
        standard_metrics: subset of :data:`standard.METRICS` (default all available).
        progress: show a rich progress bar.

    Returns:
        :class:`CaptionScores`.
    """
    import pandas as pd

    chosen = flavours_of(flavour)
    run = _ScoreRun(len(pairs))
    if "paper" in chosen:
        _score_paper(run, pairs, issues, progress)
    if "standard" in chosen:
        _score_standard(run, pairs, standard_metrics, progress)
    rows = [{"clip": clip, "system": c.system, "n_references": len(refs), "file": c.file, "row": c.row,
             "caption": c.text} for c, clip, refs in pairs]
    frame = pd.DataFrame(rows, columns=list(ID_COLUMNS))
    for lab in run.metrics:
        frame[lab] = run.values[lab]
    frame = frame[run.keep].reset_index(drop=True)
    return CaptionScores(frame, run.corpus, run.metrics, run.unavailable, run.notes, run.faults)


def _score_paper(run: _ScoreRun, pairs: list[tuple[Caption, str, list[str]]], issues: IssueList,
                 progress: bool) -> None:
    """The paper flavour, pair by pair; a pair it cannot score is an issue and is left out."""
    from soundaq.base.errors import first_line

    scorer = paper.PaperScorer()
    for m in paper.METRICS:
        run.offer(label("paper", m), scorer.available[m])
    if scorer.available["METEOR"].available:
        run.notes["WordNet"] = scorer.available["METEOR"].detail
    for i, (c, _, refs) in enumerate(_progress(pairs, progress, "paper metrics")):
        try:
            got = scorer.score(c.text, refs)
        except (ValueError, ZeroDivisionError) as err:
            issues.add(c.file, c.row, "unscorable", f"row {c.row}: {c.clip} ({c.system}) cannot be scored by the "
                       f"paper metrics ({first_line(err)}); row excluded; fix: check the caption's text")
            run.keep[i] = False
            continue
        for m, v in got.items():
            run.values[label("paper", m)][i] = v
    for m in paper.METRICS:                    # a metric given up during the run is dropped for every clip
        lab = label("paper", m)
        if lab in run.metrics and not scorer.available[m].available:
            run.drop(lab, scorer.available[m].reason)
            run.notes.pop("WordNet", None)


def _score_standard(run: _ScoreRun, pairs: list[tuple[Caption, str, list[str]]],
                    standard_metrics: Sequence[str] | None, progress: bool) -> None:
    """The standard (COCO/DCASE) flavour, system by system (its corpus values need a system's captions at once)."""
    scorer = standard.StandardScorer(standard_metrics)
    try:
        for m in standard.METRICS:
            if scorer.available[m].reason != "not requested" or scorer.available[m].available:
                run.offer(label("standard", m), scorer.available[m])
        if scorer.metrics:
            run.notes["Java"] = scorer.java_source
        systems = sorted({c.system for c, _, _ in pairs})
        for system in _progress(systems if scorer.metrics else [], progress, "standard metrics"):
            idx = [i for i, (c, _, _) in enumerate(pairs) if c.system == system and run.keep[i]]
            if idx and not _score_system(run, scorer, system, [pairs[i] for i in idx], idx):
                break
        for m in standard.METRICS:         # a Java tool that failed alone (METEOR, SPICE): dropped everywhere
            lab = label("standard", m)
            if lab in run.metrics and not scorer.available[m].available:
                run.drop(lab, scorer.available[m].reason)
                run.corpus = {k: v for k, v in run.corpus.items() if k[1] != lab}
    finally:
        scorer.close()


def _score_system(run: _ScoreRun, scorer: standard.StandardScorer, system: str,
                  pairs: list[tuple[Caption, str, list[str]]], idx: list[int]) -> bool:
    """Score one system's pairs (at positions ``idx``) in the standard flavour; False when the COCO tools failed
    (then the whole standard flavour is reported unavailable and the paper one stays).
    """
    try:
        got_corpus, got = scorer.score([(clip, c.text, refs) for c, clip, refs in pairs])
    except (OSError, ValueError, RuntimeError, AssertionError) as err:
        # a Java tool that fails (no write access beside pycocoevalcap's jars, out of memory, a
        # dead METEOR process): the standard flavour is reported unavailable, the paper one stays
        from soundaq.base.errors import first_line

        for lab in [m for m in run.metrics if m.startswith("standard/")]:
            run.drop(lab, f"the COCO tools failed ({type(err).__name__}: {first_line(err)}; Java: "
                          f"{scorer.java_source}); fix: check that this Java runs, or set "
                          f"${standard.JAVA_ENV} to another")
        run.corpus = {k: v for k, v in run.corpus.items() if not k[1].startswith("standard/")}
        return False
    for m, v in got_corpus.items():
        run.corpus[(system, label("standard", m))] = v
    for m, vals in got.items():
        for i, v in zip(idx, vals):
            run.values[label("standard", m)][i] = v
    return True


def _progress(items: Iterable[T], enabled: bool, what: str) -> Iterator[T]:
    if not enabled:
        yield from items
        return
    from rich.progress import track

    yield from track(list(items), description=what, transient=True)


def summary(scores: CaptionScores, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
            confidence: float = 0.95) -> pd.DataFrame:
    """Per system and metric: the mean of per-clip values with a bootstrap CI, and the corpus value.

    Args:
        scores: from :func:`score_captions`.
        n_resamples: bootstrap resamples of the clips.
        seed: the resampling's seed (the same seed gives the same CIs).
        confidence: the CI's level.

    Returns:
        DataFrame with columns system, metric (labelled), flavour, value (corpus-level for the
        standard flavour, the mean for the paper flavour: the number each convention reports),
        mean, ci_low, ci_high, se, n_clips, confidence, n_resamples, seed.
    """
    import pandas as pd

    rows = []
    for system, g in scores.per_clip.groupby("system", sort=True):
        if not scores.metrics:
            continue
        stats = mean_ci(g[scores.metrics].to_numpy(dtype=float), n_resamples, seed, confidence)
        for j, lab in enumerate(scores.metrics):
            flavour = lab.split("/", 1)[0]
            mean = float(stats["estimate"][j])
            rows.append({"system": system, "metric": lab, "flavour": flavour,
                         "value": scores.corpus.get((str(system), lab), mean), "mean": mean,
                         "ci_low": float(stats["ci_low"][j]), "ci_high": float(stats["ci_high"][j]),
                         "se": float(stats["se"][j]), "n_clips": int(stats["n"][j]),
                         "confidence": confidence, "n_resamples": n_resamples, "seed": seed})
    return pd.DataFrame(rows, columns=["system", "metric", "flavour", "value", "mean", "ci_low", "ci_high", "se",
                                       "n_clips", "confidence", "n_resamples", "seed"])


def paired(scores: CaptionScores, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
           confidence: float = 0.95) -> pd.DataFrame:
    """Paired bootstrap of every two systems on the clips both captioned, per metric.

    Args:
        scores: from :func:`score_captions`.
        n_resamples: bootstrap resamples of the common clips.
        seed: the resampling's seed.
        confidence: the CI's level; a difference is significant when p < 1 - confidence.

    Returns:
        DataFrame: metric, system_a, system_b, mean_a, mean_b, diff (a - b), ci_low, ci_high,
        p_value, significant (p < 1 - confidence), n_clips.
    """
    import pandas as pd

    cols = ["metric", "system_a", "system_b", "mean_a", "mean_b", "diff", "ci_low", "ci_high", "p_value",
            "significant", "n_clips"]
    rows = []
    wide = {str(s): g.set_index("clip")[scores.metrics] for s, g in scores.per_clip.groupby("system", sort=True)}
    for a, b in itertools.combinations(sorted(wide), 2):
        common = wide[a].index.intersection(wide[b].index)
        if len(common) < 2 or not scores.metrics:
            continue
        va, vb = wide[a].loc[common].to_numpy(float), wide[b].loc[common].to_numpy(float)
        res = paired_mean_diff(va, vb, n_resamples, seed, confidence)
        for j, lab in enumerate(scores.metrics):
            p = float(res["p_value"][j])
            rows.append({"metric": lab, "system_a": a, "system_b": b, "mean_a": float(np.nanmean(va[:, j])),
                         "mean_b": float(np.nanmean(vb[:, j])), "diff": float(res["diff"][j]),
                         "ci_low": float(res["ci_low"][j]), "ci_high": float(res["ci_high"][j]), "p_value": p,
                         "significant": bool(p < 1 - confidence), "n_clips": int(res["n"][j])})
    return pd.DataFrame(rows, columns=cols)

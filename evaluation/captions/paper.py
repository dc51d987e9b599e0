"""The ``paper`` flavour: the text metrics exactly as the SoundSCaper release computes them.

Source: ``NLP_metrics/NLP_metrics.py`` of the public Yuanbo2020/SoundSCaper repository, function
``cal_scores``, applied per clip to one candidate and one reference (the expert caption):

- ``BLEU``: ``nltk.translate.bleu_score.sentence_bleu([reference.split()], candidate.split(),
  weights=(1, 0, 0, 0))``: whitespace tokens, case and punctuation kept, **unigram** precision with
  the brevity penalty, i.e. BLEU-1 (the release's comment says BLEU-4);
- ``ROUGE-L Recall/Precision/F1``: ``rouge.Rouge().get_scores(candidate, reference)[0]['rouge-l']``
  (the ``rouge`` PyPI package, r/p/f);
- ``METEOR``: ``nltk.translate.meteor_score.meteor_score([reference.split()], candidate.split())``,
  which needs the WordNet corpus (see :func:`find_wordnet`);
- ``CIDEr``: pycocoevalcap's ``Cider().compute_score`` on a two-document corpus, the clip and a
  dummy document whose reference and candidate are both ``"0"``; the clip's score is kept. The IDF
  therefore comes from two documents: every n-gram of the reference gets the same weight
  ``log 2``, so the score is a length-penalised, clipped n-gram cosine x 10 (CIDEr-D's code with an
  uninformative IDF), not a corpus CIDEr.

With several references per clip, each metric is given all of them the way its function accepts
(nltk: list of token lists; ``rouge``: the best F1 reference; CIDEr: the reference list), which for
one reference is exactly the release.
"""
from __future__ import annotations

import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

FLAVOUR = "paper"
#: Metric names as the release's ``save_results`` writes them (labelled ``paper/<name>`` everywhere).
METRICS: tuple[str, ...] = ("BLEU", "ROUGE-L Recall", "ROUGE-L Precision", "ROUGE-L F1", "METEOR", "CIDEr")
#: Environment variable naming a WordNet 3.0 database folder (``data.noun``, ``index.noun``, ``lexnames``, ...).
WORDNET_ENV = "SOUNDAQ_WORDNET"


@dataclass
class Availability:
    """Whether a metric can be computed here; ``reason`` is the one line shown when not."""

    available: bool
    reason: str = ""
    detail: str = ""
    #: True when the component is there but damaged or failing (an unreadable corpus, a Java tool that
    #: crashed): the run ends with exit 1, as a batch with a bad item does; an absent optional component
    #: (no WordNet, no SPICE jars) is documented and leaves the exit code at 0.
    fault: bool = False


#: The WordNet database files nltk's METEOR reads a synset from (read through once when WordNet is found).
_WORDNET_DATA = ("data.noun", "data.verb", "data.adj", "data.adv")
FIX_NLTK_WORDNET = ("delete it and download it again (python -m nltk.downloader wordnet), or set "
                    f"${WORDNET_ENV} to a WordNet 3.0 dict folder")


def find_wordnet():
    """The WordNet corpus reader nltk's METEOR needs, found offline, and how it was found.

    Looks, without any download, (1) where nltk itself looks (``nltk.data.path``, ``$NLTK_DATA``:
    ``corpora/wordnet`` or ``wordnet.zip``, as ``nltk.download('wordnet')`` leaves it), then (2) in
    the folder named by ``$SOUNDAQ_WORDNET`` (a Princeton WordNet 3.0 ``dict`` folder). A corpus that
    is found is read through once (its four ``data.*`` files): a cut-short ``wordnet.zip`` (an
    interrupted download) or a damaged member is reported here, as unreadable with its path and the
    fix, rather than as a traceback in the middle of scoring.

    Returns:
        ``(reader, Availability)``; ``reader`` is None when WordNet is not found or not readable
        (``Availability.reason`` then says which and the fix).
    """
    where = nltk_wordnet_location()
    broken = None
    if where is not None:
        try:
            import nltk

            root = nltk.data.ZipFilePathPointer(str(where), "wordnet/") if where.suffix == ".zip" else str(where)
            reader = _open_wordnet(root)
            return reader, Availability(True, detail=f"nltk corpus wordnet {reader.get_version()} ({where})")
        except Exception as err:  # noqa: BLE001 - a broken corpus is reported, not raised
            broken = Availability(False, f"nltk's wordnet corpus is unreadable ({where}: {_why(where, err)}); "
                                         f"fix: {FIX_NLTK_WORDNET}", fault=True)
    folder = os.environ.get(WORDNET_ENV, "").strip()
    if folder:
        reader, found = _wordnet_folder(Path(folder))
        if reader is not None or broken is None:
            return reader, found
    if broken is not None:
        return None, broken
    return None, Availability(False, "WordNet not found offline: nltk cannot download it here and no PyPI package "
                                     "ships it; paper/METEOR needs nltk's 'wordnet' corpus (nltk.download('wordnet') "
                                     f"where the network allows) or ${WORDNET_ENV}=<WordNet 3.0 dict folder>")


def nltk_wordnet_location() -> Path | None:
    """Where nltk would read its ``wordnet`` corpus from: the first ``corpora/wordnet`` folder on
    ``nltk.data.path``, else the first ``corpora/wordnet.zip`` (nltk's own search order), or None.
    """
    import nltk

    roots = [Path(p) for p in nltk.data.path if p]
    for name in ("wordnet", "wordnet.zip"):
        for root in roots:
            path = root / "corpora" / name
            if path.exists():
                return path
    return None


def _read_through(reader) -> None:
    """Read every ``data.*`` file of a WordNet reader once (zip members are checked against their
    CRC-32 when read to the end), so damage shows now, not at the first synset of some clip.
    """
    for fileid in _WORDNET_DATA:
        with reader.open(fileid) as fh:
            while fh.read(1 << 20):
                pass


def _why(path: Path, err: BaseException) -> str:
    """The reason part of the unreadable-corpus line."""
    import zipfile

    from soundaq.base.errors import first_line

    if isinstance(err, zipfile.BadZipFile):
        size = path.stat().st_size if path.is_file() else 0
        return (f"not a whole zip file ({first_line(err)}; {size:,} bytes), as an interrupted download leaves it"
                if size else f"a damaged zip file ({first_line(err)})")
    if isinstance(err, LookupError):             # nltk's banner of asterisks says nothing on one line
        return "nltk finds no wordnet/ folder in it" if path.suffix == ".zip" else "nltk cannot read it as its corpus"
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}" + (f": {err.filename}" if err.filename and str(err.filename) != str(path) else "")
    return f"{type(err).__name__}: {first_line(err)}"


def _open_wordnet(root):
    """A WordNet reader of the database at ``root`` (a folder path or nltk's path pointer, also into a
    zip), English only, read through once (:func:`_read_through`); raises what nltk raises.
    """
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _EnglishWordNet(WordNetCorpusReader):
        # nltk maps a non-default WordNet onto its default 'wordnet' corpus for the multilingual
        # (OMW) functions; METEOR uses English synsets only, so there is nothing to map.
        def map_wn(self, version="wordnet"):
            return None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # "the multilingual functions are not available": not used
        reader = _EnglishWordNet(root, None)
    _read_through(reader)
    return reader


def _wordnet_folder(folder: Path):
    import nltk

    need = ("lexnames", "data.noun", "index.noun", "noun.exc")
    lacking = [n for n in need if not (folder / n).is_file()]
    if lacking:
        return None, Availability(False, f"${WORDNET_ENV}={folder} is not a WordNet database folder (no "
                                         f"{', '.join(lacking)}); fix: point it at a WordNet 3.0 dict folder",
                                  fault=True)

    resolved = str(folder.resolve())
    if resolved not in nltk.data.path:
        nltk.data.path.append(resolved)     # nltk reads corpora only below its data path
    try:
        reader = _open_wordnet(resolved)
    except Exception as err:  # noqa: BLE001
        return None, Availability(False, f"${WORDNET_ENV}={folder}: cannot read it as WordNet ({_why(folder, err)}); "
                                         "fix: point it at a whole WordNet 3.0 dict folder", fault=True)
    return reader, Availability(True, detail=f"{folder} (WordNet {reader.get_version()})")


class PaperScorer:
    """Scores (candidate, references) pairs with the release's functions.

    ``available``: ``{metric: Availability}``; METEOR is unavailable without WordNet, the others
    need only the Python packages nltk, rouge and pycocoevalcap.
    """

    def __init__(self):
        from nltk.translate.bleu_score import sentence_bleu
        from pycocoevalcap.cider.cider import Cider
        from rouge import Rouge

        self._bleu = sentence_bleu
        self._rouge = Rouge()
        self._cider = Cider()
        self._wordnet, meteor = find_wordnet()
        self.available = {m: Availability(True) for m in METRICS}
        self.available["METEOR"] = meteor

    @property
    def metrics(self) -> list[str]:
        """The metrics of :data:`METRICS` this scorer can compute (METEOR needs WordNet)."""
        return [m for m in METRICS if self.available[m].available]

    def score(self, candidate: str, references: list[str]) -> dict[str, float]:
        """Every available metric of one candidate against its reference(s).

        Args:
            candidate: the caption to score (non-empty).
            references: one or more reference captions of the same clip.

        Returns:
            ``{metric: value}`` for the available metrics (BLEU, ROUGE-L, METEOR in [0, 1]; CIDEr >= 0).

        Raises:
            ValueError: from the ``rouge`` package when a text has no word it can count (e.g. only
            punctuation); the caller reports it as an unscorable caption.

        When WordNet fails while scoring, METEOR is left out from then on and ``available["METEOR"]``
        says why; the caller drops the metric for every clip.
        """
        hyp = candidate.split()
        refs = [r.split() for r in references]
        out: dict[str, float] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # nltk warns about the zero 2..4-gram weights
            out["BLEU"] = float(self._bleu(refs, hyp, weights=(1, 0, 0, 0)))
        best = max((self._rouge.get_scores(candidate, r)[0]["rouge-l"] for r in references), key=lambda s: s["f"])
        out["ROUGE-L Recall"], out["ROUGE-L Precision"], out["ROUGE-L F1"] = (float(best[k]) for k in "rpf")
        if self._wordnet is not None:
            from nltk.translate.meteor_score import meteor_score

            try:
                out["METEOR"] = float(meteor_score(refs, hyp, wordnet=self._wordnet))
            except (OSError, LookupError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error) as err:
                # WordNet damaged where the read-through did not look (or since): METEOR is given up for the
                # whole run (the caller drops its column), the other metrics go on
                self._wordnet = None
                self.available["METEOR"] = Availability(False, f"the WordNet corpus failed while scoring "
                                                               f"({_why(Path(), err)}); fix: {FIX_NLTK_WORDNET}",
                                                        fault=True)
        _, scores = self._cider.compute_score({"clip": list(references), "null": ["0"]},
                                              {"clip": [candidate], "null": ["0"]})
        out["CIDEr"] = float(scores[0])
        return out

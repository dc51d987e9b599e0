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


def find_wordnet():
    """The WordNet corpus reader nltk's METEOR needs, found offline, and how it was found.

    Looks, without any download, (1) where nltk itself looks (``nltk.data.path``, ``$NLTK_DATA``:
    ``corpora/wordnet`` or ``wordnet.zip``, as ``nltk.download('wordnet')`` leaves it), then (2) in
    the folder named by ``$SOUNDAQ_WORDNET`` (a Princeton WordNet 3.0 ``dict`` folder).

    Returns:
        ``(reader, Availability)``; ``reader`` is None when WordNet is not found.
    """
    import nltk

    try:
        nltk.data.find("corpora/wordnet")
    except LookupError:
        pass
    else:
        from nltk.corpus import wordnet

        try:
            version = wordnet.get_version()       # loads the lazy corpus
            return wordnet, Availability(True, detail=f"nltk corpus wordnet {version}")
        except Exception as err:  # noqa: BLE001 - a broken corpus is reported, not raised
            from soundaq.base.errors import first_line

            return None, Availability(False, f"nltk's wordnet corpus is unreadable ({first_line(err)})")
    folder = os.environ.get(WORDNET_ENV, "").strip()
    if folder:
        return _wordnet_folder(Path(folder))
    return None, Availability(False, "WordNet not found offline: nltk cannot download it here and no PyPI package "
                                     "ships it; paper/METEOR needs nltk's 'wordnet' corpus (nltk.download('wordnet') "
                                     f"where the network allows) or ${WORDNET_ENV}=<WordNet 3.0 dict folder>")


def _wordnet_folder(folder: Path):
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    need = ("lexnames", "data.noun", "index.noun", "noun.exc")
    lacking = [n for n in need if not (folder / n).is_file()]
    if lacking:
        return None, Availability(False, f"${WORDNET_ENV}={folder} is not a WordNet database folder (no "
                                         f"{', '.join(lacking)})")

    class _FolderWordNet(WordNetCorpusReader):
        # nltk maps a non-default WordNet onto its default 'wordnet' corpus for the multilingual
        # (OMW) functions; METEOR uses English synsets only, so there is nothing to map.
        def map_wn(self, version="wordnet"):
            return None

    resolved = str(folder.resolve())
    if resolved not in nltk.data.path:
        nltk.data.path.append(resolved)     # nltk reads corpora only below its data path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = _FolderWordNet(resolved, None)
        except Exception as err:  # noqa: BLE001
            from soundaq.base.errors import first_line

            return None, Availability(False, f"${WORDNET_ENV}={folder}: cannot read it as WordNet ({first_line(err)})")
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

            out["METEOR"] = float(meteor_score(refs, hyp, wordnet=self._wordnet))
        _, scores = self._cider.compute_score({"clip": list(references), "null": ["0"]},
                                              {"clip": [candidate], "null": ["0"]})
        out["CIDEr"] = float(scores[0])
        return out

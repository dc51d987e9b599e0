"""soundaq: benchmark and evaluate soundscape affective-quality models (SoundSCaper / ARAUS).

This module is the public Python API. Names load on first use, so ``import soundaq`` stays light
(no torch until a model is touched). The subpackages tell the story of the data:

- :mod:`soundaq.base`: errors, atomic file io, the vocabulary (scenes, events, qualities)
- :mod:`soundaq.models_zoo`: audio -> features -> data -> the eight nets -> one training module, and
  the metrics it logs (:mod:`soundaq.models_zoo.metrics`)
- :mod:`soundaq.evaluation`: bootstrap CIs, Spearman correlation, figures, caption text metrics
- :mod:`soundaq.human_study`: expert-jury questionnaires and their statistics
- :mod:`soundaq.captions`: soundscape captions (template or any LLM server) and ADIFF-style comparisons
- :mod:`soundaq.benchmark`: the ``soundaq`` command, the leaderboard, run folders

>>> import soundaq
>>> soundaq.SCENES
('public_square', 'park', 'street_traffic')
>>> len(soundaq.EVENTS), soundaq.QUALITIES[:2]
(15, ('pleasant', 'eventful'))
>>> "SoundAQnet" in soundaq.list_models()
True
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

#: Public name -> "module:attribute" (imported on first access).
_API: dict[str, str] = {
    # vocabulary
    "SCENES": "soundaq.base.vocab:SCENES",
    "EVENTS": "soundaq.base.vocab:EVENTS",
    "QUALITIES": "soundaq.base.vocab:QUALITIES",
    "iso_coordinates": "soundaq.base.vocab:iso_coordinates",
    "UserError": "soundaq.base.errors:UserError",
    # features
    "load_audio": "soundaq.models_zoo.features:load_audio",
    "log_mel": "soundaq.models_zoo.features:log_mel",
    "loudness": "soundaq.models_zoo.features:loudness",
    "specific_loudness": "soundaq.models_zoo.features:specific_loudness",
    "loudness_statistics": "soundaq.models_zoo.features:loudness_statistics",
    "stationary_loudness": "soundaq.models_zoo.features:stationary_loudness",
    "stationary_loudness_from_levels": "soundaq.models_zoo.features:stationary_loudness_from_levels",
    # models
    "list_models": "soundaq.models_zoo.registry:list_nets",
    "build_net": "soundaq.models_zoo.registry:build_net",
    "load_model": "soundaq.models_zoo.checkpoints:load_checkpoint",
    # metrics and analyses
    "score": "soundaq.models_zoo.metrics:score_table",
    "read_predictions": "soundaq.models_zoo.metrics:read_predictions",
    "correlate": "soundaq.evaluation.correlation_report:correlate_predictions",
    # captions (the language stage)
    "caption": "soundaq.captions.run:caption",
    "compare": "soundaq.captions.compare:compare",
    "LLMSettings": "soundaq.captions.llm:LLMSettings",
    # caption evaluation
    "caption_metrics": "soundaq.human_study.caption_eval:run_caption_metrics",
    "recover_public_key": "soundaq.human_study.public_key:recover_key",
}

__all__ = [*sorted(_API), "__version__"]


def __getattr__(name: str) -> Any:
    try:
        target = _API[name]
    except KeyError:
        raise AttributeError(f"module 'soundaq' has no attribute {name!r}") from None
    module_name, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

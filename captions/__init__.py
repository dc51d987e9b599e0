"""The language stage of SoundSCaper: soundscape captions from predictions, and explanations of how two
soundscapes differ.

- :mod:`.prompt`: the release's LLM prompt (threshold cascade, agreement words, neutral qualities dropped)
- :mod:`.template`: the offline, deterministic captioner that follows the prompt's rules
- :mod:`.llm`: any OpenAI-compatible chat-completions server (key from the environment, retries,
  concurrency, a request budget, an on-disk response cache)
- :mod:`.tables`: reading and validating predictions tables and ``soundaq predict`` JSON
- :mod:`.run`: :func:`caption` (API) and :func:`caption_run` (``soundaq caption``)
- :mod:`.signal`, :mod:`.compare`, :mod:`.figures`: ``soundaq compare``, ADIFF's three tiers

Layer: imports soundaq.base, soundaq.models_zoo and soundaq.evaluation; only soundaq.benchmark imports it.
"""
from soundaq.captions.compare import compare, compare_run
from soundaq.captions.llm import LLMSettings
from soundaq.captions.run import caption, caption_run

__all__ = ["LLMSettings", "caption", "caption_run", "compare", "compare_run"]

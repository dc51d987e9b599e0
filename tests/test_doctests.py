"""The examples in the public API's docstrings run and give what they show."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["soundaq", "soundaq.base.vocab", "soundaq.models_zoo.features.loudness"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    assert result.attempted > 0, f"{name} has no examples"


def test_public_api_functions_say_what_they_return():
    """Every function of ``soundaq``'s public API documents Args/Returns (issue 13's docstring habit)."""
    import inspect

    import soundaq

    missing = []
    for name, target in soundaq._API.items():
        module, attr = target.split(":")
        obj = getattr(importlib.import_module(module), attr)
        if inspect.isfunction(obj) and "Returns:" not in (inspect.getdoc(obj) or ""):
            missing.append(f"{name} ({target})")
    assert not missing, f"add Args/Returns/Raises to: {', '.join(missing)}"

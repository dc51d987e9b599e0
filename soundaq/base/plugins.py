"""Loading what a ``"package.module:Attribute"`` target names: the one loader of every plug-in registry
(nets in soundaq.models_zoo.registry, data sources in soundaq.models_zoo.data.sources).
"""
from __future__ import annotations

import importlib

from soundaq.base.errors import UserError, one_line


def import_target(target: str, kind: str, label: str | None = None, error: type[UserError] = UserError):
    """The object ``target`` (``"package.module:Attribute.sub"``) names, imported on first use.

    Args:
        target: the import path.
        kind: what the plug-in is, for the message (``"model"``, ``"data source"``).
        label: its name in the message (default ``target``).
        error: the UserError subclass to raise.

    Raises:
        ``error``: the module does not import, or has no such attribute (one line naming ``label`` and the fix).
    """
    label = label or target
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise error(f"{kind} {label}: cannot import {module_name} ({one_line(err)}); fix: check the installation "
                    "of soundaq, or install the plug-in's package or put it on PYTHONPATH") from err
    obj: object = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise error(f"{kind} {label}: {module_name} defines no class {attr}; fix: check the name after ':'")
    return obj

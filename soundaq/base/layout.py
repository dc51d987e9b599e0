"""Folder layouts written as tables: a file or folder at a fixed name below another path attribute.

A class that owns a folder on disk (an embedded set, a training run) names the places inside it with
:class:`Below` instead of one property per place::

    class EmbeddedSet:
        labels_dir = Below("root", "labels", "The folder of the 15 ARAUS-style label files.")

``EmbeddedSet(root).labels_dir`` is then ``root / "labels"``, computed on each access (nothing is
created or checked on disk).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, overload


class Below:
    """A read-only path attribute: ``getattr(obj, base) / name`` (a descriptor).

    Args:
        base: the attribute holding the parent path (a :class:`~pathlib.Path`, or another :class:`Below`).
        name: the file or folder name below it.
        doc: what the place holds (the attribute's docstring).
    """

    def __init__(self, base: str, name: str, doc: str):
        self.base, self.name = base, name
        self.__doc__ = doc

    @overload
    def __get__(self, obj: None, owner: type) -> Below: ...

    @overload
    def __get__(self, obj: Any, owner: type | None = None) -> Path: ...

    def __get__(self, obj: Any, owner: type | None = None) -> Path | Below:
        if obj is None:
            return self
        return getattr(obj, self.base) / self.name

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(f"{self.name!r} is a fixed place below {self.base!r}; set {self.base!r} instead")

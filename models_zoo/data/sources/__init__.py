"""Data sources as plug-ins: one class behind one protocol (:class:`DataSource`) and one registry entry.

Built in (:data:`SOURCES`): ``embedded`` (the synthetic set), ``araus`` (the paper's ARAUS split, with
features or audio) and ``own`` (a folder of audio plus one CSV of labels). A source from outside the
project joins through a Python entry point in the group :data:`ENTRY_POINT_GROUP` (``soundaq.sources``)
naming a :class:`DataSource` subclass::

    [project.entry-points."soundaq.sources"]
    mytest = "my_package.data:MyListeningTest"

and is then a choice of ``--data`` and a ``source`` name of
:class:`~soundaq.models_zoo.data.datamodule.SoundscapeDataModule` like the built-in ones (docs/extending.md).
Classes are imported lazily from ``"module:Class"`` targets, so listing the sources imports nothing heavy.
"""
from __future__ import annotations

import inspect

from soundaq.base.plugins import import_target
from soundaq.models_zoo.data.sources.base import CONTEXT_OPTIONS, OPTION_FLAGS, DataSource
from soundaq.models_zoo.data.sources.readers import AudioFolder, DataError, FeatureFolder

#: Registry name -> ``"module:Class"`` of the built-in sources.
SOURCES: dict[str, str] = {
    "embedded": "soundaq.models_zoo.data.sources.embedded:EmbeddedSource",
    "araus": "soundaq.models_zoo.data.sources.araus:ArausSource",
    "own": "soundaq.models_zoo.data.sources.own:OwnSource",
}
#: Entry-point group through which installed packages add sources.
ENTRY_POINT_GROUP = "soundaq.sources"
_ENTRY_POINTS: dict[str, str] | None = None

__all__ = [
    "ENTRY_POINT_GROUP",
    "SOURCES",
    "AudioFolder",
    "DataError",
    "DataSource",
    "FeatureFolder",
    "make_source",
    "source_class",
    "source_names",
    "sources",
]


def _entry_points() -> dict[str, str]:
    """Sources that installed packages register under :data:`ENTRY_POINT_GROUP` (read once; a plug-in
    cannot replace a built-in source).
    """
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        from importlib.metadata import entry_points

        _ENTRY_POINTS = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in SOURCES}
    return _ENTRY_POINTS


def sources() -> dict[str, str]:
    """Every known source: name -> ``"module:Class"`` (the built-in ones first, then plug-ins)."""
    return {**SOURCES, **_entry_points()}


def source_names() -> list[str]:
    """Registry names, for ``--data`` choices."""
    return list(sources())


def source_class(name: str) -> type[DataSource]:
    """The :class:`DataSource` subclass registered as ``name`` (imported on first use).

    Raises:
        DataError: an unknown name (listing the known ones) or a plug-in that does not import or is not a
            DataSource subclass (one line).
    """
    known = sources()
    if name not in known:
        raise DataError(f"unknown data source {name!r}; fix: use one of {', '.join(known)}")
    target = known[name]
    obj = import_target(target, "data source", name, error=DataError)
    if not (isinstance(obj, type) and issubclass(obj, DataSource)):
        raise DataError(f"data source {name}: {target} is not a DataSource subclass; fix: derive it from "
                        "soundaq.models_zoo.data.sources.DataSource")
    return obj


def _takes(cls: type[DataSource]) -> tuple[set[str], bool]:
    params = inspect.signature(cls.__init__).parameters
    return set(params) - {"self"}, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _spelt(option: str) -> str:
    flag = OPTION_FLAGS.get(option)
    return f"{option} ({flag})" if flag else option


def make_source(source: str | DataSource, **options) -> DataSource:
    """The source ``source`` names, built from the options its constructor takes; an instance as it is.

    ``options`` are the data module's keyword arguments (None: not given). The shared ones
    (:data:`~soundaq.models_zoo.data.sources.base.CONTEXT_OPTIONS`: cache, calibration, progress) reach a
    source only when its constructor names them; any other option it does not take is refused.

    Raises:
        DataError: an unknown source, or options that go with another source (one line naming both
            spellings and the sources that take them); the source's own checks (what it needs).
    """
    given = {k: v for k, v in options.items() if v is not None}
    if isinstance(source, DataSource):
        extra = [k for k in given if k not in CONTEXT_OPTIONS]
        if extra:
            raise DataError(f"{', '.join(map(_spelt, extra))}: a ready data source takes no options; fix: give them "
                            f"to the {type(source).__name__} you pass instead")
        return source
    cls = source_class(source)
    takes, any_keyword = _takes(cls)
    extra = [k for k in given if k not in takes and k not in CONTEXT_OPTIONS and not any_keyword]
    if extra:
        others = [n for n in sources() if n != source and all(k in _takes(source_class(n))[0] for k in extra)]
        where = (f"go with source={others[0]!r}" + "".join(f" or {n!r}" for n in others[1:])
                 + f" (--data {'|'.join(others)})") if others else "are not options of any data source"
        raise DataError(f"{'/'.join(map(_spelt, extra))} {where}, not source={source!r}; fix: leave them out "
                        f"(source={source!r} needs {cls.needs})")
    return cls(**{k: v for k, v in given.items() if k in takes or any_keyword})

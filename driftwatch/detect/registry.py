"""Which ``StreamMonitor`` a stream gets: the preset registry.

``spec.preset`` names a factory; ``auto`` (the default) is DriftWatch's own monitors. A preset module
registers itself on import::

    from driftwatch.detect.registry import register_preset

    register_preset("zscore-consecutive", ZScoreConsecutive.from_spec, ZScoreConsecutive)

A factory is ``factory(spec, feature, kind) -> StreamMonitor | None`` (``feature`` is the declared
``FeatureSpec`` or None, ``kind`` is ``numeric`` or ``categorical``); returning None (e.g. a numeric-only
preset asked for a categorical stream) falls back to the default monitor. Every monitor class that can
appear in a checkpoint must be registered (the class list is how ``Engine.from_dict`` finds it: nothing
is imported by a name read from a checkpoint).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from .base import StreamMonitor
from .categorical import CategoricalMonitor
from .numeric import NumericMonitor

if TYPE_CHECKING:
    from driftwatch.vocab.spec import FeatureSpec, MonitorSpec

MonitorFactory = Callable[["MonitorSpec", "FeatureSpec | None", str], StreamMonitor | None]

_PRESETS: dict[str, MonitorFactory] = {}
_CLASSES: dict[str, type[StreamMonitor]] = {}
_loaded = False

#: modules that register presets on import (imported lazily, once; a missing one is skipped)
PRESET_MODULES = ("driftwatch.detect.presets",)


def register_monitor(cls: type[StreamMonitor]) -> type[StreamMonitor]:
    """Make a monitor class restorable from checkpoints (usable as a decorator)."""
    _CLASSES[cls.__name__] = cls
    return cls


def register_preset(name: str, factory: MonitorFactory, *classes: type[StreamMonitor]) -> None:
    """Register ``factory`` for ``spec.preset == name`` and the monitor classes it creates."""
    _PRESETS[name] = factory
    for cls in classes:
        register_monitor(cls)


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in PRESET_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # the module exists but something it imports does not: a real error
                raise


def default_monitor(spec: MonitorSpec, feature: FeatureSpec | None, kind: str) -> StreamMonitor:
    if kind == "categorical":
        return CategoricalMonitor.from_spec(spec, feature)
    return NumericMonitor.from_spec(spec, feature)


def make_monitor(spec: MonitorSpec, feature: FeatureSpec | None, kind: str) -> StreamMonitor:
    """The monitor for a new stream under ``spec.preset``."""
    _load()
    factory = _PRESETS.get(spec.preset)
    if factory is not None:
        m = factory(spec, feature, kind)
        if m is not None:
            return m
    return default_monitor(spec, feature, kind)


def monitor_class(name: str) -> type[StreamMonitor]:
    _load()
    try:
        return _CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown monitor class {name!r} in checkpoint (not registered)") from None


def presets() -> list[str]:
    _load()
    return sorted(_PRESETS)


register_monitor(NumericMonitor)
register_monitor(CategoricalMonitor)
register_preset("auto", default_monitor)

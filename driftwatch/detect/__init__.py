"""``driftwatch.detect``: the statistics. Pure numpy/scipy, no I/O, no clocks.

Public API (docs/contracts.md section 2): ``Engine``, ``DriftEvent``, ``StreamStatus``, ``InputError``,
``State``; the registry (``register_preset``) for preset monitors; the building blocks (summaries,
detectors, calibration) for tools such as ``driftwatch replay`` and the benchmarks.
"""

from .aggregate import FeatureStatus, aggregate
from .base import DriftEvent, EventType, InputError, State, StreamMonitor, Transition, event_id, severity_of
from .categorical import WindowedGTest, categorical_evidence
from .cusum import Cusum, clamped_lindley, lindley
from .engine import OVERFLOW_KEY, Engine, StreamStatus
from .monitor import CategoricalMonitor, NumericMonitor
from .registry import make_monitor, monitor_class, register_monitor, register_preset
from .scale import ScaleCusum, abs_deviation
from .shape import WindowedShape
from .summaries import CategoryCounts, Moments, NumericSummary, QuantileSketch, summary_from_dict
from .transforms import Standardizer

__all__ = [
    "OVERFLOW_KEY",
    "CategoricalMonitor",
    "CategoryCounts",
    "Cusum",
    "DriftEvent",
    "Engine",
    "EventType",
    "FeatureStatus",
    "InputError",
    "Moments",
    "NumericMonitor",
    "NumericSummary",
    "QuantileSketch",
    "ScaleCusum",
    "Standardizer",
    "State",
    "StreamMonitor",
    "StreamStatus",
    "Transition",
    "WindowedGTest",
    "WindowedShape",
    "abs_deviation",
    "aggregate",
    "categorical_evidence",
    "clamped_lindley",
    "event_id",
    "lindley",
    "make_monitor",
    "monitor_class",
    "register_monitor",
    "register_preset",
    "severity_of",
    "summary_from_dict",
]

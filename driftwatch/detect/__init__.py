"""``driftwatch.detect``: the statistics. Pure numpy/scipy, no I/O, no clocks.

Public API (docs/contracts.md section 2): ``Engine``, ``DriftEvent``, ``StreamStatus``, ``InputError``,
``State``; the registry (``register_preset``) for preset monitors; the building blocks (summaries,
detectors, calibration) for tools such as ``driftwatch replay`` and the benchmarks.
"""

from .aggregate import FeatureStatus, aggregate
from .base import (
    Detector,
    DriftEvent,
    EventType,
    InputError,
    State,
    StreamMonitor,
    Transition,
    event_id,
    severity_of,
    statistic_score,
)
from .categorical import CategoricalMonitor, categorical_evidence
from .detectors import Cusum, ScaleCusum, TailMixture, WindowedGTest, WindowedShape, abs_deviation, lindley
from .detectors.cusum import clamped_lindley
from .engine import OVERFLOW_KEY, Engine, StreamStatus
from .numeric import NumericMonitor
from .registry import make_monitor, monitor_class, register_monitor, register_preset
from .seasonal import SeasonalProfile
from .summaries import CategoryCounts, Moments, NumericSummary, QuantileSketch, summary_from_dict
from .tails import TailModel
from .transforms import Standardizer

__all__ = [
    "OVERFLOW_KEY",
    "CategoricalMonitor",
    "CategoryCounts",
    "Cusum",
    "Detector",
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
    "SeasonalProfile",
    "Standardizer",
    "State",
    "StreamMonitor",
    "StreamStatus",
    "TailMixture",
    "TailModel",
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
    "statistic_score",
    "summary_from_dict",
]

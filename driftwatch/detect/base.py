"""The shared shapes of ``driftwatch.detect``: states, transitions, and the two detector levels.

Two levels, as in River but batch-first:

* ``Detector`` -- one statistic on one stream (a CUSUM for an upward mean shift, a scale test, a
  windowed shape test). ``update(x)`` takes a batch and returns the position of the first alarm in it,
  or -1; ``drift_detected`` is the River-style flag for the last batch. Detectors know nothing about
  states or recovery.
* ``StreamMonitor`` -- everything for one (key, feature) stream: baseline learning, the detectors, the
  state machine (Initializing -> Stable -> Drifting -> Stable) and the evidence. The default monitor
  combines several Detectors; presets (``zscore-consecutive``, ``sustained-zscore``) are monitors of
  their own because their rules include recovery.

Batches are split only at transitions, so the Python-level loop runs once per event, not per sample.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np


class State(StrEnum):
    INITIALIZING = "Initializing"
    STABLE = "Stable"
    DRIFTING = "Drifting"


class EventType(StrEnum):
    DRIFT_START = "DRIFT_START"
    DRIFT_END = "DRIFT_END"


class InputError(ValueError):
    """A batch that cannot be applied at all (e.g. strings into a numeric stream). Names the feature;
    nothing from the batch was applied."""

    def __init__(self, feature: str, message: str) -> None:
        super().__init__(f"{feature}: {message}")
        self.feature = feature


def severity_of(score: float, warning: float = 0.2, critical: float = 0.5) -> str:
    """Map a drift score in [0, 1] to ``none | warning | critical``."""
    if score >= critical:
        return "critical"
    if score >= warning:
        return "warning"
    return "none"


def event_id(monitor: str, feature: str, key: str, etype: str, index: int) -> str:
    """Deterministic id: the same history replayed (or a retried publish) yields the same id."""
    raw = f"{monitor}\x1f{feature}\x1f{key}\x1f{etype}\x1f{index}".encode()
    return hashlib.sha256(raw).hexdigest()[:20]


@dataclass
class DriftEvent:
    """A state transition of one stream, with what a human needs to believe it."""

    id: str
    type: str
    feature: str
    key: str
    index: int
    timestamp: float | None
    detector: str
    score: float
    severity: str
    onset: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Transition:
    """What a StreamMonitor reports; the Engine turns it into a DriftEvent (adding ids and names)."""

    type: EventType
    position: int  # 0-based position within the batch passed to update()
    detector: str
    score: float
    onset_position: int | None = None  # may be negative: the change began in an earlier batch
    evidence: dict[str, Any] = field(default_factory=dict)


class Detector(ABC):
    """One sequential statistic on an already-standardised stream.

    Subclasses keep O(1) state, vectorise ``update`` (e.g. CUSUM via the Lindley recursion on a
    cumulative sum) and serialise exactly with ``to_dict``/``from_dict``.
    """

    name: ClassVar[str] = "detector"

    def __init__(self) -> None:
        self.drift_detected = False

    @abstractmethod
    def update(self, z: np.ndarray) -> int:
        """Feed a batch; return the position of the first alarm in it (-1 if none). After an alarm
        the detector stops at that sample: the caller re-feeds the rest after acting on it."""

    @abstractmethod
    def reset(self) -> None:
        """Forget accumulated evidence (after an alarm is acted on, or a baseline change)."""

    @property
    @abstractmethod
    def score(self) -> float:
        """Current evidence as a drift score in [0, 1] (0.5 = at the alarm threshold)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    @abstractmethod
    def from_dict(cls, d: dict[str, Any]) -> Detector: ...


class StreamMonitor(ABC):
    """Baseline + detectors + state machine for one (key, feature) stream."""

    kind: ClassVar[str] = "numeric"  # or "categorical"

    state: State
    samples: int
    rejected: int

    @abstractmethod
    def update(self, values: np.ndarray) -> list[Transition]:
        """Feed a batch (float64 for numeric, object/str array for categorical). Non-finite numeric
        values are dropped and counted in ``rejected``; positions in Transitions refer to the batch
        as passed in."""

    def seed(self, values: np.ndarray) -> None:
        """Fit the baseline from explicit reference samples (``Engine.seed_baseline``, and the
        ``fromWindow`` baseline), without scoring them. Only while Initializing; with at least
        ``min_samples`` usable values the stream becomes Stable and the baseline stays fixed, with
        fewer they are the start of a learned baseline (the stream keeps learning from its samples)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be seeded")

    #: whether ``adopt`` is implemented (the drift lifecycle; presets keep their own recovery rules)
    can_adopt: ClassVar[bool] = False

    def adopt(self, values: np.ndarray | None = None) -> None:
        """Make ``values`` (default: the recent samples) the baseline and go Stable."""
        raise NotImplementedError(f"{type(self).__name__} cannot adopt a new baseline")

    @property
    @abstractmethod
    def score(self) -> float: ...

    @property
    @abstractmethod
    def detector(self) -> str:
        """Name of the detector behind the current score (``cusum-mean-up``, ``g-test``, ...)."""

    @abstractmethod
    def baseline_summary(self) -> dict[str, Any]:
        """Mergeable summary of the baseline (JSON-safe)."""

    @abstractmethod
    def current_summary(self) -> dict[str, Any]:
        """Mergeable summary of the recent window (JSON-safe)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    @abstractmethod
    def from_dict(cls, d: dict[str, Any]) -> StreamMonitor: ...

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

from driftwatch.vocab.states import State as State  # re-exported: the engine's states are the shared ones


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


def statistic_score(s: float, h: float) -> float:
    """Statistic and threshold -> drift score in [0, 1]: 0.5 at the threshold, 1 at twice it; quadratic
    below the threshold so the warning band (0.2) starts at 63 % of it rather than at every small
    excursion."""
    r = s / h if h > 0 else 0.0
    if r <= 1.0:
        return 0.5 * r * r
    return min(1.0, 0.5 + 0.5 * (r - 1.0))


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
    """One sequential statistic on an already-standardised stream: the whole contract.

    ``update`` takes a batch and returns the position of the first alarm in it (-1: none) and stops
    there -- the caller re-feeds the rest after acting on it; ``onset`` is then the absolute index of
    the first sample of the change the statistic found. While a stream is Drifting, ``track`` follows
    the statistic through a batch without stopping (capped at ``cap``) and returns its path, which is
    compared with ``recovery_level``. Subclasses keep O(1) state and serialise exactly.
    """

    name: ClassVar[str] = "detector"
    __slots__ = ("drift_detected", "label", "onset")

    def __init__(self) -> None:
        self.drift_detected = False
        self.onset: int | None = None
        self.label = self.name

    @abstractmethod
    def update(self, z: np.ndarray) -> int:
        """Feed a batch; return the position of the first alarm in it (-1 if none)."""

    @abstractmethod
    def track(self, z: np.ndarray, cap: float) -> np.ndarray:
        """While Drifting: the statistic's path through the batch (no stop at alarms)."""

    @abstractmethod
    def reset(self) -> None:
        """Forget accumulated evidence (after an alarm is acted on, or a baseline change)."""

    @property
    @abstractmethod
    def statistic(self) -> float:
        """The current value of the statistic (what ``threshold`` is compared with)."""

    @property
    @abstractmethod
    def threshold(self) -> float: ...

    @property
    def recovery_level(self) -> float:
        """Below this (half the threshold) a sample counts as normal for recovery: the hysteresis keeps a
        persisting small shift, whose statistic wanders near the threshold, from flapping."""
        return self.threshold / 2

    @property
    def score(self) -> float:
        """Current evidence as a drift score in [0, 1] (0.5 = at the alarm threshold)."""
        return statistic_score(self.statistic, self.threshold)

    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    @abstractmethod
    def from_dict(cls, d: dict[str, Any]) -> Detector: ...


class StreamMonitor(ABC):
    """Baseline + detectors + state machine for one (key, feature) stream."""

    kind: ClassVar[str] = "numeric"  # or "categorical"
    # every per-stream class declares its attributes (no instance __dict__: ~0.5-1 kB a stream saved)
    __slots__ = ("rejected", "samples", "state")

    state: State
    samples: int
    rejected: int

    @abstractmethod
    def update(self, values: np.ndarray, ts: np.ndarray | None = None) -> list[Transition]:
        """Feed a batch (float64 for numeric, object/str array for categorical), with the samples'
        timestamps (epoch seconds) when the caller has them -- monitors that learn a seasonal profile
        use them, the others ignore them. Non-finite numeric values are dropped and counted in
        ``rejected``; positions in Transitions refer to the batch as passed in."""

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

    def since_onset_summary(self) -> dict[str, Any] | None:
        """While Drifting: a mergeable summary of the samples since the drift's onset (None otherwise,
        and for monitors that do not keep one)."""
        return None

    @property
    def follows_level(self) -> bool:
        """Whether the detectors follow a local level (a stream whose level wanders): then the baseline
        summary says where the level *was* when it was learned, not where the stream should be now,
        and a merged baseline-vs-current test has no reference (``aggregate``)."""
        return False

    def band(
        self, n: int, ts: np.ndarray | None = None, width: float = 3.0
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The range of raw values the baseline calls normal for ``n`` samples (at ``ts``): what
        ``replay --plot`` draws behind the stream. None for monitors without one (categorical, the
        presets) and before the baseline is fitted."""
        return None

    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    @abstractmethod
    def from_dict(cls, d: dict[str, Any]) -> StreamMonitor: ...

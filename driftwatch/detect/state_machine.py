"""The state machine every default monitor shares: Initializing -> Stable -> Drifting -> Stable.

Counters, severity, and the part of a checkpoint that is the same for every monitor. What moves a
stream between states is each monitor's own (``numeric.py``, ``categorical.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import State, StreamMonitor, severity_of


def first_run(normal: np.ndarray, carry: int, length: int) -> tuple[int, int]:
    """Position where a run of ``length`` consecutive True values completes (run may start ``carry``
    samples before the batch), or -1; and the run length at the end of the batch.

    >>> first_run(np.array([True, False, True, True, True]), 0, 3)
    (4, 3)
    """
    n = normal.size
    ar = np.arange(n)
    last_bad = np.maximum.accumulate(np.where(normal, -1 - carry, ar))
    run = ar - last_bad
    hit = run >= length
    pos = int(np.argmax(hit)) if hit.any() else -1
    return pos, int(run[-1]) if n else carry


class StateMachine(StreamMonitor):
    """Shared plumbing: counters, severity thresholds, and the state part of ``to_dict``."""

    __slots__ = (
        "alarm_detector",
        "budget",
        "critical",
        "min_samples",
        "normal_run",
        "recovery",
        "warning",
        "window",
    )

    def __init__(
        self, min_samples: int, window: int, budget: float, recovery: int, warning: float, critical: float
    ):
        self.min_samples = int(min_samples)
        self.window = int(window)
        self.budget = float(budget)
        self.recovery = int(recovery)
        self.warning = float(warning)
        self.critical = float(critical)
        self.state = State.INITIALIZING
        self.samples = 0
        self.rejected = 0
        self.normal_run = 0
        self.alarm_detector = ""

    def _params(self) -> list[Any]:
        """The constructor's shared arguments, in order, as ``to_dict`` saves them."""
        return [self.min_samples, self.window, self.budget, self.recovery, self.warning, self.critical]

    def _state_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "samples": self.samples,
            "rejected": self.rejected,
            "normal_run": self.normal_run,
            "alarm_detector": self.alarm_detector,
        }

    def _restore_state(self, d: dict[str, Any]) -> None:
        self.state = State(d["state"])
        self.samples, self.rejected, self.normal_run = (
            int(d["samples"]),
            int(d["rejected"]),
            int(d["normal_run"]),
        )
        self.alarm_detector = d["alarm_detector"]

    @property
    def severity(self) -> str:
        return severity_of(self.score, self.warning, self.critical)

"""What the compatibility presets share: finite-value handling, batch positions, evidence helpers.

See ``presets/__init__.py`` for the conventions both presets follow.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

import numpy as np

from driftwatch.detect.base import State, StreamMonitor, Transition, severity_of
from driftwatch.detect.summaries import NumericSummary

#: upper bound on samples handled per vectorised step: bounds the work wasted past a transition
#: (the rest of the chunk is re-evaluated under the new state) and the size of temporaries.
CHUNK = 4096


# --- vectorised helpers -------------------------------------------------------------------------------


def run_lengths(flags: np.ndarray, carry: int) -> np.ndarray:
    """``run[i]`` = length of the run of True ending at ``i``, counting ``carry`` Trues just before the
    array (the run left over from the previous chunk). False positions have run 0."""
    idx = np.arange(flags.size)
    last_false = np.maximum.accumulate(np.where(flags, -1, idx))
    run = idx - last_false
    run[last_false < 0] += carry
    return run


def first_true(cond: np.ndarray) -> int:
    """Index of the first True, or -1."""
    if cond.size == 0:
        return -1
    i = int(np.argmax(cond))
    return i if cond[i] else -1


def zscores(x: np.ndarray, mu: np.ndarray | float, sd: np.ndarray | float) -> np.ndarray:
    """(x - mu) / sd with the zero-std convention: 0 where x == mu, +-inf elsewhere."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - mu) / sd
    z[np.isnan(z)] = 0.0  # 0/0: x equals a constant baseline (x itself is finite here)
    return z


def window_stats(x: np.ndarray) -> dict[str, Any]:
    """Evidence summary of a window: n, mean, std, p50/p95/p99, min, max (JSON-safe).

    Quantiles by linear interpolation (numpy's default method) from one sort: ``np.percentile``'s
    overhead dominated event-heavy streams (a legacy rule can fire hundreds of times per 100k)."""
    if x.size == 0:
        return {"n": 0}
    srt = np.sort(x)
    pos = np.array([0.50, 0.95, 0.99]) * (srt.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, srt.size - 1)
    q = srt[lo] + (srt[hi] - srt[lo]) * (pos - lo)
    return {
        "n": int(x.size),
        "mean": float(np.mean(x)),
        "std": float(np.std(x)),
        "p50": float(q[0]),
        "p95": float(q[1]),
        "p99": float(q[2]),
        "min": float(srt[0]),
        "max": float(srt[-1]),
    }


def window_summary(x: np.ndarray) -> dict[str, Any]:
    """The engine's mergeable numeric summary (moments + quantile sketch) of a window."""
    s = NumericSummary()
    s.update(x)
    return s.to_dict()


def pack64(a: np.ndarray) -> str:
    """float64 array -> base64: exact (the rules compare floats exactly) and ~half the size of JSON."""
    return base64.b64encode(np.ascontiguousarray(a, "<f8").tobytes()).decode("ascii")


def unpack64(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), "<f8").copy()


def split_finite(values: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """(finite values, their positions in the batch, number rejected)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    ok = np.isfinite(x)
    if ok.all():
        return x, np.arange(x.size), 0
    pos = np.flatnonzero(ok)
    return x[pos], pos, int(x.size - pos.size)


class PresetMonitor(StreamMonitor):
    """Shared input handling: drop and count non-finite values, and map finite-sample indices back to
    positions in the batch as passed in -- also for onsets in earlier batches, which the Engine
    resolves by counting raw values (accepted and rejected) back from the batch start."""

    #: raw positions remembered for the last this-many finite samples (longer look-backs assume no
    #: rejected values in between)
    LOOKBACK = 256
    __slots__ = ("critical", "lookback", "since", "warning")

    name: ClassVar[str]
    _PARAMS: ClassVar[tuple[str, ...]]  # the constructor arguments, saved with the state
    rejected: int
    lookback: np.ndarray  # raw positions of the last finite samples, relative to the current batch
    since: int | None  # sample count at the last transition
    warning: float
    critical: float

    @property
    def severity(self) -> str:
        return severity_of(self.score, self.warning, self.critical)

    @property
    def detector(self) -> str:
        return self.name

    def _start(self, warning: float, critical: float) -> None:
        """``__init__``: severity thresholds and the fresh state every preset starts from."""
        self.warning, self.critical = warning, critical
        self.state = State.INITIALIZING
        self.samples = 0
        self.rejected = 0
        self.lookback = np.zeros(0, dtype=np.int64)
        self.since = None

    def _to_dict(self, **fields: Any) -> dict[str, Any]:
        """``to_dict``: what every preset saves around the preset's own ``fields``."""
        return {
            "preset": self.name,
            "params": {p: getattr(self, p) for p in self._PARAMS},
            "state": str(self.state),
            "samples": self.samples,
            "rejected": self.rejected,
            **fields,
            "since": self.since,
            "lookback": self.lookback.tolist(),
        }

    def _restore(self, d: dict[str, Any]) -> None:
        """``from_dict``: restore what ``_to_dict`` saved for every preset."""
        self.state = State(d["state"])
        self.samples, self.rejected = int(d["samples"]), int(d["rejected"])
        self.since = d["since"]
        self.lookback = np.asarray(d["lookback"], dtype=np.int64)

    def update(self, values: np.ndarray, ts: np.ndarray | None = None) -> list[Transition]:
        xf, pos, rejected = split_finite(values)
        self.rejected += rejected
        out = self._update(xf, pos) if xf.size else []
        n_raw = pos.size + rejected
        self.lookback = np.concatenate([self.lookback - n_raw, pos[-self.LOOKBACK :] - n_raw])[
            -self.LOOKBACK :
        ]
        return out

    def _update(self, xf: np.ndarray, pos: np.ndarray) -> list[Transition]:
        raise NotImplementedError

    def _learn_left(self) -> int:
        """Samples still to learn before the first one is scored."""
        raise NotImplementedError

    def seed(self, values: np.ndarray) -> None:
        """The presets' baselines are their first samples: seeding feeds up to that many finite
        values as if they had come first (the rest is not used)."""
        if self.state is not State.INITIALIZING:
            raise ValueError("the baseline is already fitted")
        x = np.asarray(values, dtype=np.float64).ravel()
        x = x[np.isfinite(x)][: self._learn_left()]
        if x.size:
            out = self.update(x)
            assert not out

    def _position(self, pos: np.ndarray, f: int) -> int:
        """Finite index ``f`` of this batch (negative: an earlier batch) -> raw batch position."""
        if f >= 0:
            return int(pos[f])
        lb = self.lookback
        if -f <= lb.size:
            return int(lb[f])
        return int(lb[0]) + f + lb.size if lb.size else f

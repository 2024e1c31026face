"""Detection benchmark: DriftWatch's default engine, its compatibility presets, River's detectors and
an oracle CUSUM, side by side in one table.

    .venv/bin/python bench/detection.py [--quick] [--plot out.png] [--seed 7]

Every method sees the same seeded streams (common random numbers). Each stream has a 1,000-sample
no-drift start: DriftWatch and the presets learn their baselines from it as they would in a pod; River's
detectors and the oracle get the stream standardised with that start's mean and std, i.e.
``(x - mean) / std``, as a user wiring them up would do. See bench/README.md for how to read the table.

Rows:

* false alarms per 10,000 samples on four no-drift streams (counted after the first 1,000 samples);
* median detection delay (samples after the change at sample 1,500; 3,000 samples to find it) for
  mean shifts of 0.5, 1 and 2 sigma, a doubled std, a shape change with the same mean and variance
  (normal -> symmetric bimodal), a categorical share change and a new category. A run in which the
  method alarmed before the change is discarded (the "runs discarded" row says how many), ``[80%]``
  says only 80% of the kept runs were detected within the horizon; ``n/a``: the method cannot take
  that input (categorical) or has nothing to know (the oracle knows only mean shifts and, on the
  creep row, ramps);
* samples/second per core: one process, one numeric stream, as one batch where the API allows it;
* bytes of state per stream: the serialised checkpoint after 10,000 samples (JSON for DriftWatch, as
  stored in Redis; pickle for River and the oracle).

Two more tables, DriftWatch's default only: false alarms by baseline size (the calibration must hold at
any size the spec allows), and false alarms *after an adoption* (each no-drift stream with a +1.5 sd
level step at sample 4,000, counted after the step's drift was adopted: the adopted baseline must keep
the budget as the learned one did).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import lfilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from driftwatch.detect import Engine
from driftwatch.detect.calibration import cusum_threshold
from driftwatch.vocab.spec import MonitorSpec

#: no-drift samples are split over this many streams, each learning its own baseline: the false-alarm
#: rate of a detector whose baseline is estimated is itself random (one 1,000-sample baseline of the
#: 1 %-outlier stream gave 28 alarms in 200,000 samples, the next fifteen 0-14), and a fleet of pods
#: sees the average over baselines, not one draw of it
FA_STREAMS = 10
BUDGET = 10_000  # samples between false alarms: DriftWatch's default falseAlarmsPer, the oracle's ARL
WARMUP = 1_000  # the no-drift start: baselines are learned / standardisation is estimated from it
CHANGE = 1_500  # the change point of the delay streams
HORIZON = 3_000  # samples after the change in which a detection counts
MU, SIGMA = 100.0, 10.0  # the numeric base distribution of the delay streams


@dataclass
class Sizes:
    fa_samples: int  # per no-drift stream type, after the warm-up
    reps: int  # delay runs per scenario
    speed_samples: int  # for samples/second (River's per-sample APIs use a quarter)
    # KSWIN runs a KS test per sample in Python (~1-2k samples/s): it gets a fixed, small budget
    slow_fa_samples: int
    slow_reps: int
    slow_speed_samples: int


FULL = Sizes(200_000, 100, 200_000, slow_fa_samples=5_000, slow_reps=5, slow_speed_samples=1_000)
QUICK = Sizes(10_000, 6, 20_000, slow_fa_samples=1_000, slow_reps=2, slow_speed_samples=300)


# --- streams ------------------------------------------------------------------------------------------------


def gaussian(rng: np.random.Generator, n: int) -> np.ndarray:
    return MU + SIGMA * rng.standard_normal(n)


def lognormal(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.lognormal(3.0, 1.0, n)


def outliers(rng: np.random.Generator, n: int) -> np.ndarray:
    x = gaussian(rng, n)
    x[rng.random(n) < 0.01] *= 10.0
    return x


def ar1(rng: np.random.Generator, n: int) -> np.ndarray:
    e = rng.standard_normal(n) * math.sqrt(1 - 0.5**2)
    e[0] = rng.standard_normal()  # start in the stationary law
    return MU + SIGMA * np.asarray(lfilter([1.0], [1.0, -0.5], e), np.float64)


def pareto(rng: np.random.Generator, n: int) -> np.ndarray:
    """Pareto-tailed sizes (tail index 2.5: finite variance, a heavy upper tail)."""
    return 100.0 * (1.0 + rng.pareto(2.5, n))


def quantised(rng: np.random.Generator, n: int) -> np.ndarray:
    """Latencies reported in whole milliseconds: ~12 distinct values carry most of the mass."""
    return np.round(rng.lognormal(2.0, 0.3, n))


#: one sample a minute: a day is 1,440 samples (the daily-cycle row's period)
SAMPLE_SECONDS = 60.0


def daily_cycle(rng: np.random.Generator, n: int) -> np.ndarray:
    """Gaussian plus a daily sine of amplitude 0.5 sd (period 1,440 samples, with timestamps)."""
    t = np.arange(n) * SAMPLE_SECONDS
    out: np.ndarray = gaussian(rng, n) + 0.5 * SIGMA * np.sin(2 * np.pi * t / 86_400.0)
    return out


def strong_cycle(rng: np.random.Generator, n: int) -> np.ndarray:
    """Gaussian plus a daily sine of amplitude 3 sd: a cycle the seasonal profile takes (the 0.5 sd one
    is left to the local level and the slow update), so this row measures the profile's own error."""
    t = np.arange(n) * SAMPLE_SECONDS
    out: np.ndarray = gaussian(rng, n) + 3.0 * SIGMA * np.sin(2 * np.pi * t / 86_400.0)
    return out


NO_DRIFT: list[tuple[str, Callable[[np.random.Generator, int], np.ndarray]]] = [
    ("Gaussian", gaussian),
    ("lognormal (sigma 1)", lognormal),
    ("1% outliers at 10x", outliers),
    ("AR(1) phi=0.5", ar1),
    ("Pareto tail (alpha 2.5)", pareto),
    ("quantised (whole ms)", quantised),
    ("daily cycle 0.5 sd (timestamps)", daily_cycle),
    ("daily cycle 3 sd (timestamps)", strong_cycle),
]
#: the rows whose timestamps matter (the other rows get none where the baseline size is the point)
SEASONAL = (daily_cycle, strong_cycle)

CATS = np.array(["a", "b", "c", "d"])


def _cats(rng: np.random.Generator, n: int, p: list[float]) -> np.ndarray:
    return CATS[rng.choice(len(p), size=n, p=p)]


def drifted(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One delay stream: no drift before CHANGE, the named change from CHANGE on."""
    n = CHANGE + HORIZON
    if kind.startswith("categorical"):
        x = _cats(rng, n, [0.5, 0.3, 0.2])
        post = [0.35, 0.30, 0.35] if kind == "categorical: share change" else [0.45, 0.27, 0.18, 0.10]
        x[CHANGE:] = _cats(rng, HORIZON, post)
        return x
    x = gaussian(rng, n)
    z = rng.standard_normal(HORIZON)
    if kind.startswith("mean +"):
        x[CHANGE:] += float(kind.split("+")[1].split()[0]) * SIGMA
    elif kind == "std x2":
        x[CHANGE:] = MU + 2 * SIGMA * z
    elif kind.startswith("shape"):  # +-0.9 sigma modes, noise 0.436 sigma: mean and variance unchanged
        s = rng.choice([-1.0, 1.0], size=HORIZON)
        x[CHANGE:] = MU + SIGMA * (0.9 * s + math.sqrt(1 - 0.81) * z)
    elif kind.startswith("slow mode"):  # one sample in ten takes 3x as long
        slow = rng.random(HORIZON) < 0.1
        x[CHANGE:][slow] *= 3.0
    elif kind.startswith("creep"):  # the mean creeps to +2 sigma over 2,000 samples, then stays
        x[CHANGE:] += 2.0 * SIGMA * np.minimum(np.arange(1, HORIZON + 1) / 2_000.0, 1.0)
    return x


DELAYS = [
    "mean +0.5 sigma",
    "mean +1 sigma",
    "mean +2 sigma",
    "std x2",
    "shape: normal -> bimodal",
    "slow mode: 10% of samples x3",
    "creep to +2 sigma over 2,000",
    "categorical: share change",
    "categorical: new category",
]


def shift_of(kind: str) -> float | None:
    return float(kind.split("+")[1].split()[0]) if kind.startswith("mean +") else None


# --- methods ------------------------------------------------------------------------------------------------


class Method:
    name = ""
    categorical = False
    slow = False  # per-sample Python at ~1-2k samples/s: gets the Sizes.slow_* budget

    def alarms(self, x: np.ndarray, kind: str | None = None, first_only: bool = False) -> list[int]:
        """Alarm positions over the whole stream, or just the first one (all a delay run needs: an
        alarm before the change discards the run, the first one after it is the detection)."""
        raise NotImplementedError

    def speed(self, x: np.ndarray) -> float:
        raise NotImplementedError

    def state_bytes(self, x: np.ndarray) -> int:
        raise NotImplementedError

    def knows(self, kind: str) -> bool:
        return self.categorical or not kind.startswith("categorical")


class DriftWatch(Method):
    categorical = True

    def __init__(self, name: str, preset: str) -> None:
        self.name = name
        self.spec = MonitorSpec.parse({"preset": preset, "sensitivity": {"falseAlarmsPer": BUDGET}})
        # the presets are numeric-only (a categorical stream would get the default monitor)
        self.categorical = preset == "auto"

    def _engine(self, x: np.ndarray, ts: np.ndarray | None = None) -> tuple[Engine, list[int]]:
        eng = Engine(self.spec, name="bench")
        evs = eng.update("x", x, ts=ts)
        return eng, [e.index for e in evs if e.type == "DRIFT_START"]

    def alarms(self, x: np.ndarray, kind: str | None = None, first_only: bool = False) -> list[int]:
        # the no-drift rows carry timestamps (a sample a minute), as a sidecar's samples do; the delay
        # rows do not (their 1,500-sample warm-up is shorter than the two days a seasonal baseline needs)
        ts = np.arange(x.size) * SAMPLE_SECONDS if kind is None else None
        return self._engine(x, ts)[1]

    def speed(self, x: np.ndarray) -> float:
        eng = Engine(self.spec, name="bench")
        eng.update("x", x[:WARMUP])
        t = time.perf_counter()
        eng.update("x", x[WARMUP:])
        return (x.size - WARMUP) / (time.perf_counter() - t)

    def state_bytes(self, x: np.ndarray) -> int:
        return len(json.dumps(self._engine(x)[0].to_dict()))


def standardise(x: np.ndarray) -> np.ndarray:
    """(x - mean) / std of the warm-up: what the external detectors are fed."""
    mu, sd = float(np.mean(x[:WARMUP])), float(np.std(x[:WARMUP]))
    return (x - mu) / (sd if sd > 0 else 1.0)


class River(Method):
    def __init__(self, name: str, factory: Callable[[], Any], slow: bool = False) -> None:
        self.name = name
        self.factory = factory
        self.slow = slow

    def alarms(self, x: np.ndarray, kind: str | None = None, first_only: bool = False) -> list[int]:
        det = self.factory()
        out = []
        for i, v in enumerate(standardise(x).tolist()):
            det.update(v)
            if det.drift_detected:
                out.append(i)
                if first_only:
                    break
        return out

    def speed(self, x: np.ndarray) -> float:
        det = self.factory()
        z = standardise(x).tolist()
        t = time.perf_counter()
        for v in z:
            det.update(v)
        return len(z) / (time.perf_counter() - t)

    def state_bytes(self, x: np.ndarray) -> int:
        det = self.factory()
        for v in standardise(x).tolist():
            det.update(v)
        return len(pickle.dumps(det))


class OracleCusum(Method):
    """Two-sided CUSUM that knows the shift: k = delta/2, h from Siegmund's approximation so that the
    two sides together have an in-control ARL of BUDGET (each side 2 x BUDGET). Restarts after an
    alarm. On no-drift streams it is the delta = 1 sigma design; on delay streams the true delta."""

    name = "oracle CUSUM"

    def knows(self, kind: str) -> bool:
        return shift_of(kind) is not None or kind.startswith("creep")

    @staticmethod
    def _run(z: np.ndarray, delta: float, first_only: bool) -> list[int]:
        k = delta / 2
        h = cusum_threshold(2.0 * BUDGET, k)
        out: list[int] = []
        up = dn = 0.0  # the two statistics carried between chunks
        s = 0
        while s < z.size:
            seg = z[s : s + 4096]  # bounded chunks: a restart after an alarm redoes at most one chunk
            # Lindley recursion, vectorised: S_t = C_t - min(-S_0, min_{u<=t} C_u)
            cu = np.cumsum(seg - k)
            cd = np.cumsum(-seg - k)
            su = cu - np.minimum(np.minimum.accumulate(cu), -up)
            sd = cd - np.minimum(np.minimum.accumulate(cd), -dn)
            hit = np.flatnonzero((su > h) | (sd > h))
            if hit.size == 0:
                up, dn = float(su[-1]), float(sd[-1])
                s += seg.size
                continue
            t = s + int(hit[0])
            out.append(t)
            if first_only:
                break
            up = dn = 0.0  # restart after the alarm
            s = t + 1
        return out

    def alarms(self, x: np.ndarray, kind: str | None = None, first_only: bool = False) -> list[int]:
        if kind and kind.startswith("creep"):  # the ramp's yardstick (delay runs only: first alarm);
            return OracleRamp.first_alarm((x - MU) / SIGMA)  # it knows the noise law exactly
        delta = shift_of(kind or "") or 1.0
        return self._run(standardise(x), delta, first_only)

    def speed(self, x: np.ndarray) -> float:
        z = standardise(x)
        t = time.perf_counter()
        self._run(z, 1.0, False)
        return z.size / (time.perf_counter() - t)

    def state_bytes(self, x: np.ndarray) -> int:
        return len(pickle.dumps({"k": 0.5, "h": cusum_threshold(2.0 * BUDGET, 0.5), "up": 0.0, "down": 0.0}))


class OracleRamp:
    """The creep row's yardstick: a two-sided scan (generalised likelihood ratio) for a linear ramp that
    knows the noise law (standardised, independent Gaussian) and that the change is a ramp -- not its
    onset or slope. At time t, over onsets t - n on a geometric grid of n (5 .. HORIZON):

        T = max_n | sum_{i=1..n} i z_(t-n+i) | / sqrt(sum_{i=1..n} i^2)

    the matched filter of a ramp starting n samples ago. Its threshold is calibrated here, by
    simulation (one fixed seed), to an in-control rate of one alarm per BUDGET samples: Siegmund-style
    closed forms for a scan over onsets are approximations, the count is what the table compares. No
    detector that does not know more than this can find a creep much sooner at the same false-alarm
    rate: it is the bound on what a trend statistic would buy over the level CUSUMs."""

    NULL_SAMPLES = 2_000_000
    ONSETS = np.unique(np.round(np.geomspace(5, HORIZON, 60)).astype(np.int64))
    _h: float | None = None

    @classmethod
    def statistic(cls, z: np.ndarray) -> np.ndarray:
        """T at every position of ``z`` (-inf before the shortest onset), from two prefix sums."""
        t = np.arange(1, z.size + 1, dtype=np.float64)
        a = np.concatenate([[0.0], np.cumsum(t * z)])
        b = np.concatenate([[0.0], np.cumsum(z)])
        out = np.full(z.size, -np.inf)
        for n in cls.ONSETS:
            if n > z.size:
                break
            tau = np.arange(z.size - n + 1, dtype=np.float64)  # onset before position tau + n - 1
            s = np.abs((a[n:] - a[:-n]) - tau * (b[n:] - b[:-n]))
            np.maximum(out[n - 1 :], s / math.sqrt(n * (n + 1) * (2 * n + 1) / 6.0), out=out[n - 1 :])
        return out

    @classmethod
    def threshold(cls) -> float:
        """The smallest h whose in-control run length is at least BUDGET: 100 fresh null runs of
        20,000 samples, each scanned from its start (as a delay run is), alarms per sample observed up to
        each run's first alarm (the rate of a scan restarted after every alarm)."""
        if cls._h is None:
            runs = [
                np.maximum.accumulate(cls.statistic(np.random.default_rng([99, r]).standard_normal(20_000)))
                for r in range(100)
            ]
            hs = np.arange(3.0, 6.0, 0.02)
            cls._h = float(hs[-1])
            for h in hs:
                first = [int(np.searchsorted(c, h, side="right")) for c in runs]  # c.size: no alarm
                alarms = sum(1 for f, c in zip(first, runs, strict=True) if f < c.size)
                if alarms / sum(min(f + 1, c.size) for f, c in zip(first, runs, strict=True)) * BUDGET <= 1.0:
                    cls._h = float(h)
                    break
        return cls._h

    @classmethod
    def first_alarm(cls, z: np.ndarray) -> list[int]:
        hit = np.flatnonzero(cls.statistic(z) > cls.threshold())
        return [int(hit[0])] if hit.size else []


def methods() -> list[Method]:
    from river import drift

    return [
        DriftWatch("DriftWatch", "auto"),
        DriftWatch("zscore-consec", "zscore-consecutive"),
        DriftWatch("sustained-z", "sustained-zscore"),
        River("PageHinkley", drift.PageHinkley),
        River("ADWIN", drift.ADWIN),
        River("KSWIN", lambda: drift.KSWIN(seed=1), slow=True),
        OracleCusum(),
    ]


# --- measuring ----------------------------------------------------------------------------------------------


@dataclass
class Delay:
    delays: list[float]  # inf: not detected within the horizon
    discarded: int

    def cell(self) -> str:
        if not self.delays:
            return "-"
        d = np.array(self.delays)
        med = float(np.median(d))
        det = float(np.mean(np.isfinite(d)))
        text = f">{HORIZON}" if not math.isfinite(med) else f"{med:.0f}"
        return text if det == 1.0 else f"{text} [{det:.0%}]"


def measure(m: Method, sizes: Sizes, seed: int) -> dict[str, Any]:
    res: dict[str, Any] = {"fa": {}, "delay": {}}
    for i, (label, gen) in enumerate(NO_DRIFT):
        n = sizes.slow_fa_samples if m.slow else sizes.fa_samples
        streams = 1 if m.slow else FA_STREAMS
        fa = 0
        for k in range(streams):
            x = gen(np.random.default_rng([seed, 1, i, k]), WARMUP + n // streams)
            fa += sum(1 for a in m.alarms(x) if a >= WARMUP)
        res["fa"][label] = fa / (n // streams * streams) * 10_000
    discarded = kept = 0
    for j, kind in enumerate(DELAYS):
        if not m.knows(kind):
            res["delay"][kind] = None
            continue
        reps = sizes.slow_reps if m.slow else sizes.reps
        d = Delay([], 0)
        for r in range(reps):
            x = drifted(kind, np.random.default_rng([seed, 2, j, r]))
            al = m.alarms(x, kind, first_only=True)[:1]
            if al and al[0] < CHANGE:
                d.discarded += 1
                continue
            found = al and al[0] < CHANGE + HORIZON
            d.delays.append(float(al[0] - CHANGE) if found else math.inf)
        res["delay"][kind] = d
        discarded += d.discarded
        kept += reps
    res["discarded"] = discarded / kept if kept else 0.0
    # per-sample Python APIs get fewer samples (their rate is flat after a few thousand); KSWIN far fewer
    n_speed = sizes.speed_samples
    if isinstance(m, River):
        n_speed = sizes.slow_speed_samples if m.slow else sizes.speed_samples // 4
    res["speed"] = m.speed(gaussian(np.random.default_rng([seed, 3]), WARMUP + n_speed))
    res["bytes"] = m.state_bytes(gaussian(np.random.default_rng([seed, 4]), 2_000 if m.slow else 10_000))
    return res


# --- the table ----------------------------------------------------------------------------------------------


def human(v: float) -> str:
    for unit, div in (("M", 1e6), ("k", 1e3)):
        if v >= div:
            return f"{v / div:.1f}{unit}"
    return f"{v:.0f}"


ROWS_FA = [label for label, _ in NO_DRIFT]


def table(ms: list[Method], results: list[dict[str, Any]], sizes: Sizes) -> str:
    label_w = 34
    col_w = max(13, *(len(m.name) + 2 for m in ms))
    lines: list[str] = []

    def row(label: str, cells: list[str]) -> None:
        lines.append(label.ljust(label_w) + "".join(c.rjust(col_w) for c in cells))

    row("", [m.name for m in ms])
    lines.append("-" * (label_w + col_w * len(ms)))
    lines.append(f"false alarms / 10k samples (target {10_000 / BUDGET:g})")
    for label in ROWS_FA:
        row(f"  {label}", [f"{r['fa'][label]:.2f}" for r in results])
    lines.append("median detection delay, samples")
    for kind in DELAYS:
        row(f"  {kind}", ["n/a" if r["delay"][kind] is None else r["delay"][kind].cell() for r in results])
    row("runs discarded (alarm before change)", [f"{r['discarded']:.0%}" for r in results])
    row("samples/second per core", [human(r["speed"]) for r in results])
    row("bytes of state per stream", [human(r["bytes"]) for r in results])
    lines.append("")
    lines.append(
        f"{sizes.fa_samples:,} no-drift samples per stream type ({FA_STREAMS} streams, each its own "
        f"baseline), {sizes.reps} delay runs per scenario "
        f"(KSWIN: {sizes.slow_fa_samples:,} and {sizes.slow_reps}, at ~1-2k samples/s). "
        f"Change at sample {CHANGE}, horizon {HORIZON}."
    )
    return "\n".join(lines)


#: (minSamples, window) pairs for the calibration-by-baseline-size table: the smallest the spec allows,
#: small, the default, a long one
BASELINE_SIZES = [(10, 10), (20, 50), (50, 200), (100, 1_000), (100, 10_000)]


def baseline_size_table(sizes: Sizes, seed: int) -> str:
    """False alarms per 10k of DriftWatch's default monitor on every no-drift stream, at baseline sizes
    from the smallest the spec allows to a long one: the thresholds must hold at any of them."""
    n = sizes.fa_samples
    label_w = 34
    lines = [
        (
            f"DriftWatch false alarms / 10k samples by baseline size (minSamples/window), {n:,} samples each"
            f" ({FA_STREAMS} streams, each its own baseline)"
        ),
        "".ljust(label_w) + "".join(f"{m}/{w}".rjust(12) for m, w in BASELINE_SIZES),
    ]
    for i, (label, gen) in enumerate(NO_DRIFT):
        cells = []
        for ms, win in BASELINE_SIZES:
            spec = MonitorSpec.parse(
                {"sensitivity": {"falseAlarmsPer": BUDGET}, "baseline": {"minSamples": ms, "window": win}}
            )
            fa = 0
            for k in range(FA_STREAMS):
                x = gen(np.random.default_rng([seed, 5, i, k]), WARMUP + n // FA_STREAMS)
                # timestamps only where the row is about them: with them a one-a-minute stream learns a
                # two-day seasonal baseline whatever the window, which is not the size being tested
                ts = np.arange(x.size) * SAMPLE_SECONDS if gen in SEASONAL else None
                evs = Engine(spec, name="bench").update("x", x, ts=ts)
                fa += sum(1 for e in evs if e.type == "DRIFT_START" and e.index >= WARMUP)
            cells.append(f"{fa / (n // FA_STREAMS * FA_STREAMS) * 10_000:.2f}")
        lines.append(f"  {label}".ljust(label_w) + "".join(c.rjust(12) for c in cells))
    return "\n".join(lines)


#: the adoption table's step: the level moves by this many robust sds of the warm-up, at STEP_AT (after
#: the daily-cycle row's two days of seasonal learning)
STEP_SDS = 1.5
STEP_AT = 4_000


def after_adoption_table(sizes: Sizes, seed: int) -> str:
    """False alarms per 10k of DriftWatch's default monitor *after it adopted* a level step, on every
    no-drift stream type: the budget must hold for the adopted baseline as it did for the learned one
    (an adopted regime is estimated from fewer values than a learned baseline unless adoption takes
    care, and its thresholds are not re-calibrated)."""
    length = max(WARMUP + sizes.fa_samples // FA_STREAMS, STEP_AT + 12_000)  # --quick: still a drift to end
    label_w = 34
    lines = [
        (
            f"DriftWatch false alarms / 10k samples after a +{STEP_SDS:g} sd step's drift ended "
            f"(default spec; {FA_STREAMS} streams, {length:,} samples each, "
            f"step at {STEP_AT:,})"
        ),
        "".ljust(label_w) + "".join(h.rjust(12) for h in ("FA/10k", "adopted", "recovered", "samples")),
    ]
    spec = MonitorSpec.parse({"sensitivity": {"falseAlarmsPer": BUDGET}})
    for i, (label, gen) in enumerate(NO_DRIFT):
        fa = after = 0
        ended = {"adopted": 0, "recovered": 0}
        for k in range(FA_STREAMS):
            x = gen(np.random.default_rng([seed, 6, i, k]), length)
            warm = x[:WARMUP]
            x[STEP_AT:] += STEP_SDS * 1.4826 * float(np.median(np.abs(warm - np.median(warm))))
            ts = np.arange(x.size) * SAMPLE_SECONDS if gen in SEASONAL else None
            evs = Engine(spec, name="bench").update("x", x, ts=ts)
            # the step's drift ends by adoption -- or by recovery where a local level follows it
            end = next((e for e in evs if e.type == "DRIFT_END" and e.index > STEP_AT), None)
            if end is None:
                continue
            ended[str((end.evidence or {}).get("reason"))] += 1
            fa += sum(1 for e in evs if e.type == "DRIFT_START" and e.index > end.index)
            after += x.size - 1 - end.index
        rate = f"{fa / after * 10_000:.2f}" if after else "-"
        cells = (rate, str(ended["adopted"]), str(ended["recovered"]), f"{after:,}")
        lines.append(f"  {label}".ljust(label_w) + "".join(c.rjust(12) for c in cells))
    return "\n".join(lines)


#: the seasonal table's streams: (label, sample seconds, weeks, weekend dip in sd, seasonality)
SEASONAL_ROWS = [
    ("daily 3 sd, 5-minute samples", 300.0, 6, 0.0, "auto"),
    ("quieter weekend, half-hourly", 1_800.0, 12, 2.0, "weekly"),
    ("quieter weekend, 5-minute samples", 300.0, 6, 2.0, "weekly"),
    ("quieter weekend, half-hourly, auto", 1_800.0, 12, 2.0, "auto"),
]


def weekly_stream(
    rng: np.random.Generator, step: float, weeks: int, weekend: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian plus a 3 sd daily sine, ``weekend`` sd lower on Saturdays and Sundays; timestamps from a
    week's start (the epoch's weeks start on a Thursday: days 2 and 3 are the weekend)."""
    ts = 1_700_000_000.0 - 1_700_000_000.0 % (7 * 86_400.0) + np.arange(0, weeks * 7 * 86_400.0, step)
    dow = np.floor(ts / 86_400.0) % 7
    x = gaussian(rng, ts.size) + SIGMA * (
        3.0 * np.sin(2 * np.pi * ts / 86_400.0) - weekend * np.isin(dow, (2, 3))
    )
    return x, ts


def seasonal_table(seed: int) -> str:
    """False alarms per 10k of DriftWatch on streams whose normal follows the clock at telemetry's own
    rates (the main table's rows are a sample a minute): a profile learned from few values a bin, and a
    weekly pattern -- with ``seasonality: weekly`` (two weeks learned first) and with ``auto`` (which
    learns two days, so the first weekends are drifts until a refit sees two weeks)."""
    label_w = 40
    lines = [
        (
            f"DriftWatch false alarms / 10k samples on seasonal streams ({FA_STREAMS} streams a row, "
            "every sample counted)"
        ),
        "".ljust(label_w) + "".join(h.rjust(12) for h in ("FA/10k", "seasonality", "samples")),
    ]
    for i, (label, step, weeks, weekend, mode) in enumerate(SEASONAL_ROWS):
        spec = MonitorSpec.parse(
            {"sensitivity": {"falseAlarmsPer": BUDGET}, "baseline": {"seasonality": mode}}
        )
        fa = n = 0
        for k in range(FA_STREAMS):
            x, ts = weekly_stream(np.random.default_rng([seed, 7, i, k]), step, weeks, weekend)
            evs = Engine(spec, name="bench").update("x", x, ts=ts)
            fa += sum(1 for e in evs if e.type == "DRIFT_START")
            n += x.size
        cells = (f"{fa / n * 10_000:.2f}", mode, f"{n:,}")
        lines.append(f"  {label}".ljust(label_w) + "".join(c.rjust(12) for c in cells))
    return "\n".join(lines)


def plot(ms: list[Method], results: list[dict[str, Any]], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 5))
    w = 0.8 / len(ms)
    for i, (m, r) in enumerate(zip(ms, results, strict=True)):
        xs = np.arange(len(ROWS_FA)) + i * w
        a1.bar(xs, [max(r["fa"][k], 0.01) for k in ROWS_FA], w, label=m.name)
        med = []
        for kind in DELAYS:
            d = r["delay"][kind]
            v = float(np.median(d.delays)) if d is not None and d.delays else np.nan
            med.append(min(v, HORIZON) if not math.isnan(v) else np.nan)
        a2.bar(np.arange(len(DELAYS)) + i * w, med, w, label=m.name)
    a1.set_yscale("log")
    a1.axhline(10_000 / BUDGET, color="k", lw=0.8, ls="--")
    a1.set_xticks(np.arange(len(ROWS_FA)) + 0.4 - w / 2, ROWS_FA, fontsize=8, rotation=15)
    a1.set_title("false alarms per 10k samples (log; dashed = budget; 0 drawn at 0.01)")
    a2.set_yscale("log")
    a2.set_xticks(np.arange(len(DELAYS)) + 0.4 - w / 2, DELAYS, fontsize=7, rotation=25, ha="right")
    a2.set_title(f"median detection delay, samples (capped at {HORIZON})")
    a1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (~30 s): a smoke run, noisy numbers")
    p.add_argument("--plot", metavar="OUT.png", help="also draw false alarms and delays")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    ms = methods()
    results = []
    t_all = time.perf_counter()
    for m in ms:
        t = time.perf_counter()
        results.append(measure(m, sizes, args.seed))
        print(f"bench: {m.name:<14} done in {time.perf_counter() - t:5.1f} s", file=sys.stderr, flush=True)
    print(table(ms, results, sizes))
    print()
    t = time.perf_counter()
    print(baseline_size_table(sizes, args.seed))
    print(f"bench: baseline sizes done in {time.perf_counter() - t:5.1f} s", file=sys.stderr, flush=True)
    print()
    t = time.perf_counter()
    print(after_adoption_table(sizes, args.seed))
    print(f"bench: after adoption done in {time.perf_counter() - t:5.1f} s", file=sys.stderr, flush=True)
    print()
    t = time.perf_counter()
    print(seasonal_table(args.seed))
    print(f"bench: seasonal done in {time.perf_counter() - t:5.1f} s", file=sys.stderr, flush=True)
    print(f"bench: total {time.perf_counter() - t_all:.1f} s", file=sys.stderr)
    if args.plot:
        plot(ms, results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())

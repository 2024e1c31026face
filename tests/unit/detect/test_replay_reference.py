"""Replay fixed seeded streams through the default numeric monitor and compare every event and the final
checkpoint with a stored reference, exactly (floats included).

The reference (``data/replay_reference.json``) was produced by the code before the hot path was
reworked for throughput (main at f93d5d3): any change to the fused loop, the batch splitting, the
evidence or the summaries that moves a single bit of what a user sees or a checkpoint holds fails here.
When detection behaviour is changed on purpose, regenerate it and say so in the commit:

    PYTHONPATH=. python tests/unit/detect/test_replay_reference.py --write
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftwatch.detect import Engine
from driftwatch.detect.seasonal import DAY
from driftwatch.vocab.spec import MonitorSpec

REFERENCE = Path(__file__).parent / "data" / "replay_reference.json"
#: uneven batch sizes, cycled: single values, a partial ring, and batches across the slow-update block
BATCHES = (1, 7, 300, 4_096, 25_000, 13, 60_000, 999)


def _stream(name: str) -> tuple[np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(20261207)
    if name == "null":
        return rng.normal(100.0, 10.0, 120_000), None
    if name == "step":
        x = rng.normal(50.0, 5.0, 60_000)
        x[30_000:] += 4.0
        return x, None
    if name == "drift":  # the bench's stream: +1.5 sd on and off every 10,000 samples
        x = rng.normal(100.0, 10.0, 150_000)
        x[(np.arange(x.size) // 10_000) % 2 == 1] += 15.0
        return x, None
    if name == "lognormal-ramp":  # a skewed stream (log transform, tails) with a slow ramp, then a jump
        x = rng.lognormal(3.0, 0.6, 80_000) * np.linspace(1.0, 1.3, 80_000)
        x[70_000:] *= 1.8
        return x, None
    if name == "seasonal":  # one sample a minute, a daily cycle, +1 sd at 03:00-04:00 from day 6
        ts = 1_700_000_000.0 - 1_700_000_000.0 % DAY + np.arange(0, 8 * DAY, 60.0)
        x = 100 + 3.0 * np.sin(2 * np.pi * ts / DAY) + rng.normal(0, 1, ts.size)
        hour = (ts % DAY >= 3 * 3600) & (ts % DAY < 4 * 3600)
        x = x + np.where(hour & (ts >= ts[0] + 6 * DAY), 1.0, 0.0)
        return x, ts
    if name == "wander":  # a level that wanders (a random walk under the noise): the local level is used
        x = 20.0 + np.cumsum(rng.normal(0.0, 0.1, 60_000)) + rng.normal(0.0, 1.0, 60_000)
        x[40_000:] += 4.0
        x[50_000:50_500] += rng.normal(0.0, 3.0, 500)  # a noisy spell that ends: recovered from
        return x, None
    if name == "nan-mixed":  # NaN, inf and out-of-range values among a stream that steps up
        x = rng.normal(10.0, 1.0, 50_000)
        x[25_000:] += 1.0
        bad = rng.choice(x.size, 2_000, replace=False)
        x[bad[:1_000]] = np.nan
        x[bad[1_000:1_500]] = np.inf
        x[bad[1_500:]] = 1e300
        return x, None
    raise ValueError(name)


#: (stream, monitor spec): the default preset, plus seasonality and adoption by samples
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "null": ("null", {"preset": "auto"}),
    "step": ("step", {"preset": "auto"}),
    "drift": ("drift", {"preset": "auto"}),
    "drift-adopt": ("drift", {"preset": "auto", "baseline": {"adopt": {"after": 3_000}}}),
    "lognormal-ramp": ("lognormal-ramp", {"preset": "auto"}),
    "seasonal": ("seasonal", {"preset": "auto", "baseline": {"seasonality": "auto"}}),
    "nan-mixed": ("nan-mixed", {"preset": "auto"}),
    "wander": ("wander", {"preset": "auto"}),  # a local level (gain 0.3), following while Drifting
}


def _clean(v: Any) -> Any:
    """JSON-safe and comparable: floats as their repr (exact, and NaN equals NaN)."""
    if isinstance(v, dict):
        return {str(k): _clean(w) for k, w in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(w) for w in v]
    if isinstance(v, float | np.floating):
        return repr(float(v)) if not math.isfinite(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def replay(case: str) -> dict[str, Any]:
    name, spec = CASES[case]
    x, ts = _stream(name)
    eng = Engine(MonitorSpec.parse(spec), name="replay")
    events: list[dict[str, Any]] = []
    states: list[str] = []
    i, k = 0, 0
    while i < x.size:
        n = BATCHES[k % len(BATCHES)]
        k += 1
        for ev in eng.update("v", x[i : i + n], ts=None if ts is None else ts[i : i + n]):
            events.append(ev.to_dict())
        st = next(iter(eng.iter_streams()))
        states.append(f"{st.state}:{st.score!r}")
        i += n
    return _clean({"events": events, "states": states, "checkpoint": eng.to_dict()})


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    out: dict[str, Any] = json.loads(REFERENCE.read_text())
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_replay_matches_the_reference(case: str, reference: dict[str, Any]) -> None:
    got, want = replay(case), reference[case]
    assert len(got["events"]) == len(want["events"])
    for g, w in zip(got["events"], want["events"], strict=True):
        assert g == w
    assert got["states"] == want["states"]
    assert got["checkpoint"] == want["checkpoint"]


def test_the_reference_covers_every_event_type(reference: dict[str, Any]) -> None:
    """The fixture is not vacuous: drifts start, recover and are adopted, and the null stream is quiet
    enough to exercise the slow update between rare alarms."""
    types = {(c, e["type"], e["evidence"].get("reason")) for c in reference for e in reference[c]["events"]}
    assert ("drift", "DRIFT_END", "recovered") in types
    assert ("drift-adopt", "DRIFT_END", "adopted") in types
    assert ("seasonal", "DRIFT_START", None) in types
    assert ("nan-mixed", "DRIFT_START", None) in types
    assert ("wander", "DRIFT_START", None) in types
    assert ("wander", "DRIFT_END", "recovered") in types


if __name__ == "__main__" and "--write" in sys.argv:
    REFERENCE.write_text(json.dumps({c: replay(c) for c in sorted(CASES)}, sort_keys=True) + "\n")
    print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size:,} bytes)")

"""Event-loop lag: how late a timer fires. Every request waits behind whatever holds the loop, so
this is the stall a request can meet.

Two histograms: ``lag`` as a request meets it, and ``stall``, the lag less the time the loop's thread
waited for a CPU meanwhile (Linux ``/proc/thread-self/schedstat`` run delay): what the sidecar itself
held the loop for (its own code, or the engine thread's hold on the GIL), apart from a busy machine or
a CPU limit. On a shared or throttled core the two differ by exactly that; elsewhere both are the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import BinaryIO

from driftwatch.sidecar.histogram import FastHistogram

#: fine steps around the 10 ms the sidecar promises never to exceed
LAG_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: 50 wake-ups a second: a stall is seen unless it is shorter than this, at a negligible cost
PROBE_INTERVAL = 0.02


class LoopLag:
    def __init__(self, interval: float = PROBE_INTERVAL) -> None:
        self.interval = interval
        self.lag = FastHistogram(LAG_BUCKETS)
        self.stall = FastHistogram(LAG_BUCKETS)

    async def run(self) -> None:
        sched = _schedstat()  # opened on the loop's thread: it names that thread
        try:
            while True:
                t0, w0 = time.perf_counter(), _run_delay(sched)
                await asyncio.sleep(self.interval)
                lag = max(0.0, time.perf_counter() - t0 - self.interval)
                self.lag.observe(lag)
                self.stall.observe(max(0.0, lag - (_run_delay(sched) - w0)))
        finally:
            if sched is not None:
                sched.close()


def _schedstat() -> BinaryIO | None:
    with contextlib.suppress(OSError):
        f = open("/proc/thread-self/schedstat", "rb", buffering=0)  # noqa: SIM115 (kept open: read 50x/s)
        _run_delay(f)
        return f
    return None


def _run_delay(f: BinaryIO | None) -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (0 without schedstat)."""
    if f is None:
        return 0.0
    f.seek(0)
    return int(f.read().split()[1]) / 1e9

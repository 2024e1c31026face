"""Views of the engine for readers: a lean row per stream (metrics, phase) and the full stream list
of ``GET /v1/status`` as JSON. Built on the engine thread, never on the event loop.

``Engine.streams()`` costs ~0.2 ms per stream (it summarises baseline and current windows): with
1,000 streams a view is a few hundred ms of the engine thread. Under ingest the engine changes every
batch, so a view per read would let a tight loop of scrapes on the open metrics port take the engine
thread from ingest (whose queue then fills: 429). So the two readers differ:

- ``status_json`` (``GET /v1/status``) is exact: it reflects every chunk applied before it was asked.
  Its JSON is built for the reads that ask while it is under way and not kept after them: under
  ingest every read needs a new one anyway, and a kept one held ~0.8 MB per 1,000 streams for as long
  as the sidecar then stayed idle (its rows are kept, as the newest view).
- ``rows`` (``/metrics``) is exact while a build is cheap (< ``CHEAP``: every small sidecar, every
  test's); an expensive one is reused for ``REUSE`` x its cost after it was built, and concurrent
  readers share one build, so however often it is scraped at most 1 / (1 + ``REUSE``) of the engine
  thread goes to rows. The counters a scrape reports are read on the loop: always current.
"""

from __future__ import annotations

import asyncio
import struct
import time
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import orjson

from driftwatch.detect import Engine, StreamStatus
from driftwatch.detect.summaries import Moments, QuantileSketch
from driftwatch.sidecar.encode import dumps_array
from driftwatch.sidecar.worker import EngineWorker
from driftwatch.vocab.states import State, phase_of

PHASES = tuple(State)  # the states a stream reports, in the order the metrics list them
#: seconds of engine thread under which rows are rebuilt on every engine change
CHEAP = 0.010
#: an expensive build's rows serve scrapes for this many times its cost after it finished
REUSE = 9
#: the quantiles of a numeric stream's baseline and current window that rows carry (and /metrics
#: exports): the p50/p95/p99 of the status evidence, a few per stream to keep the scrape small
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(slots=True, frozen=True)
class StreamRow:
    feature: str
    key: str
    type: str
    state: str
    score: float
    severity: str
    baseline_mean: float | None
    baseline_std: float | None
    #: ``QUANTILES`` of the baseline and of the current window (None: not numeric, or no samples yet)
    baseline_quantiles: tuple[float, ...] | None = None
    current_quantiles: tuple[float, ...] | None = None


@dataclass(slots=True)
class _View:
    version: int  # the engine's version when the build started
    rows: list[StreamRow]
    json: orjson.Fragment | None  # the status list: only in views built for a status read
    built: float = float("-inf")  # time.monotonic() when the build finished
    cost: float = 0.0  # seconds the rows took to build


@dataclass(slots=True)
class _Build:
    """A build under way, which readers join rather than queue another."""

    since: int  # the engine's version when it was asked for: it reflects at least that
    json: bool
    task: asyncio.Task[_View]


class StreamViews:
    def __init__(self, worker: EngineWorker, cheap: float = CHEAP, reuse: float = REUSE) -> None:
        self.worker = worker
        self.cheap = cheap
        self.reuse = reuse
        self._view = _View(-1, [], None)
        self._build: _Build | None = None
        #: views built (``driftwatch_stream_view_builds``): how often the engine thread paid for them
        self.builds = 0

    async def rows(self) -> list[StreamRow]:
        """Every stream's row for ``/metrics``: current, or (expensive builds only) at most ``REUSE`` x
        its build cost old, or the build under way."""
        view, now = self._view, self.worker.version
        if view.version == now:
            return view.rows
        build = self._build
        if build is not None and build.since >= now:
            return (await asyncio.shield(build.task)).rows
        if view.cost >= self.cheap:
            if time.monotonic() - view.built < self.reuse * view.cost:
                return view.rows
            if build is not None:
                return (await asyncio.shield(build.task)).rows
        return (await self._start(json=False)).rows

    async def status_json(self) -> orjson.Fragment:
        """Every stream's ``StreamStatus`` as a JSON array, ready to embed in a response: exact."""
        build, now = self._build, self.worker.version
        if build is not None and build.json and build.since >= now:
            view = await asyncio.shield(build.task)
        else:
            view = await self._start(json=True)
        assert view.json is not None
        return view.json

    def phase(self) -> str:
        """Drifting if any stream drifts, Stable if any is stable, else Initializing (last view)."""
        return phase_of(r.state for r in self._view.rows)

    async def _start(self, json: bool) -> _View:
        """A build on the engine thread; kept (for later readers) even if the reader that started it
        goes away, and joined by others meanwhile."""
        worker = self.worker
        job = worker.call_with(lambda: worker.version, lambda engine, v: _build(engine, v, json))
        build = _Build(worker.version, json, asyncio.ensure_future(job))
        self._build = build
        build.task.add_done_callback(lambda _: self._built(build))
        return await asyncio.shield(build.task)

    def _built(self, build: _Build) -> None:
        if self._build is build:
            self._build = None
        if build.task.cancelled() or build.task.exception() is not None:
            return  # its readers get the error; the last view stays
        view = build.task.result()
        self.builds += 1
        if view.version >= self._view.version:  # kept without its JSON: see the module's docstring
            self._view = (
                view if view.json is None else _View(view.version, view.rows, None, view.built, view.cost)
            )


def _build(engine: Engine, version: int, json: bool) -> _View:
    """On the engine thread. Stream by stream: only the rows and the JSON text are kept, never every
    stream's status at once (with 1,000 streams that peak left ~8 MB more resident after each build).
    ``cost`` is the rows' share (what ``rows`` compares with ``CHEAP``), without the JSON's."""
    t0 = time.perf_counter()
    rows: list[StreamRow] = []
    writing = 0.0

    def each() -> Iterator[dict[str, Any]]:
        nonlocal writing
        for s in engine.iter_streams():
            rows.append(_row(s))
            if json:
                t1 = time.perf_counter()
                yield s.to_dict()
                writing += time.perf_counter() - t1

    text = dumps_array(each())
    cost = time.perf_counter() - t0 - writing
    fragment = orjson.Fragment(bytes(text)) if json else None
    return _View(version, rows, fragment, time.monotonic(), cost)


def _row(s: StreamStatus) -> StreamRow:
    mean = std = None
    base_q = cur_q = None
    moments: Any = s.baseline.get("moments") if s.type == "numeric" else None
    if isinstance(moments, dict):  # NumericSummary.to_dict()
        m = Moments.from_dict(moments)
        mean = m.mean
        std = m.std if m.n > 1 else None
    if s.type == "numeric":
        base_q = sketch_quantiles(s.baseline.get("sketch"), QUANTILES)
        cur_q = sketch_quantiles(s.current.get("sketch"), QUANTILES)
    return StreamRow(s.feature, s.key, s.type, s.state, float(s.score), s.severity, mean, std, base_q, cur_q)


_SHIFT = QuantileSketch._SHIFT


def _midpoint(index: int) -> float:
    """The midpoint of a sketch bucket, as ``QuantileSketch._bucket_values`` computes it."""
    lo, hi = struct.unpack("<2d", struct.pack("<2q", index << _SHIFT, (index + 1) << _SHIFT))
    return float((lo + hi) / 2)


def sketch_quantiles(sketch: Any, qs: tuple[float, ...]) -> tuple[float, ...] | None:
    """``QuantileSketch.from_dict(sketch).quantiles(qs)``, read straight off the dict: the same numbers
    at ~13 us instead of ~120 us a sketch (no numpy arrays built for three lookups), which keeps the
    quantiles cheap on every view build. None for an empty or missing sketch."""
    if not isinstance(sketch, dict):
        return None
    neg, pos = sketch["neg"], sketch["pos"]
    nc, pc = neg["counts"], pos["counts"]
    cum = list(accumulate([*reversed(nc), int(sketch["zero"]), *pc]))  # ascending values
    total = cum[-1]
    if total == 0:
        return None
    out = []
    nn = len(nc)
    for q in qs:
        j = bisect_right(cum, min(max(q, 0.0), 1.0) * (total - 1))
        if j < nn:
            out.append(-_midpoint(int(neg["offset"]) + nn - 1 - j))
        elif j == nn:
            out.append(0.0)
        else:
            out.append(_midpoint(int(pos["offset"]) + j - nn - 1))
    return tuple(out)

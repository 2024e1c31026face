"""``/metrics``: Prometheus families built at scrape time from the sidecar's own state.

The request path only bumps plain ints and dicts; a scrape copies them on the event loop (a few dict
copies: always current), takes the per-stream rows from ``views`` (built on the engine thread; an
expensive build is shared and reused for a while, see ``views``) and writes the text on the engine
thread too, so a scrape never holds up ingest. The per-stream families of one set of rows are written
once and reused by every scrape that gets the same rows. Label values stay bounded: features and keys
are capped at admission, reasons and states are fixed sets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from driftwatch import buildinfo
from driftwatch.sidecar.admission import KeyCap
from driftwatch.sidecar.encode import REPAIRS
from driftwatch.sidecar.events import DriftEvents, EventKey
from driftwatch.sidecar.exposition import Writer
from driftwatch.sidecar.histogram import FastHistogram
from driftwatch.sidecar.ingest import IngestCounters
from driftwatch.sidecar.looplag import LoopLag
from driftwatch.sidecar.memory import Trimmer
from driftwatch.sidecar.queue import Queue, StreamKey
from driftwatch.sidecar.views import PHASES, QUANTILES, StreamRow, StreamViews
from driftwatch.sidecar.worker import EngineWorker

SEVERITY_LEVEL = {"none": 0, "warning": 1, "critical": 2}
ML = ("monitor", "namespace")
FL = ("feature", "key")
QL = (*FL, "quantile")
#: the ``quantile`` label values, written once
QUANTILE_LABELS = tuple(repr(q) for q in QUANTILES)
DRIFTING = "Drifting"
#: seconds the per-stream families' text outlives the last scrape that wrote or reused it: a scrape
#: storm reuses it back to back, while at Prometheus' intervals the rows have changed by the next
#: scrape anyway -- kept in between, it only held ~1.3 MB per 1,000 streams
STREAM_TEXT_KEEP = 0.5


class RedisHealth(Protocol):
    """What metrics and routes read of ``redis_sync.RedisSync`` (which imports redis-py: it is built
    only when Redis is configured)."""

    up: bool
    restored: bool
    checkpoints: dict[str, int]
    restores: dict[str, int]
    last_checkpoint: float | None
    saved_samples: int


class StreamCounts(Protocol):
    """What metrics read of ``redis_stream.StreamReader``."""

    claimed: int
    dead: dict[str, int]


class ScrapeCounts(Protocol):
    scrapes: int
    errors: int


@dataclass(slots=True)
class _Copy:
    """The loop-side state of one scrape, copied on the event loop (the text is rendered elsewhere)."""

    ingested: dict[StreamKey, int]
    rejected: dict[str, int]
    events: dict[EventKey, int]
    latency: FastHistogram
    lag: FastHistogram
    stall: FastHistogram
    depth: int
    keys: int
    started: dict[tuple[str, str], float]
    redis_up: bool
    checkpoints: dict[str, int]
    restores: dict[str, int]
    last_checkpoint: float
    unsaved: int
    failures: dict[str, int]
    repairs: int
    dead: dict[str, int] | None  # None: no stream reader
    claimed: int
    scrapes_ok: int | None  # None: not scraping
    scrapes_failed: int
    view_builds: int


def _hist_copy(h: FastHistogram) -> FastHistogram:
    c = FastHistogram(h.bounds)
    c.counts, c.sum = list(h.counts), h.sum
    return c


class Metrics:
    def __init__(
        self,
        monitor: str,
        namespace: str,
        counters: IngestCounters,
        events: DriftEvents,
        queue: Queue,
        keys: KeyCap,
        views: StreamViews,
        worker: EngineWorker,
        loop_lag: LoopLag,
        redis: RedisHealth | None = None,
        scrape: ScrapeCounts | None = None,
        stream: StreamCounts | None = None,
        keep: float = STREAM_TEXT_KEEP,
    ) -> None:
        self.base = (monitor, namespace)
        self.counters = counters
        self.events = events
        self.queue = queue
        self.keys = keys
        self.views = views
        self.worker = worker
        self.loop_lag = loop_lag
        self.redis = redis
        self.scrape = scrape
        self.stream = stream
        #: the per-stream families' text (lines joined: a scrape of 1,000 streams then copies one
        #: string instead of joining ~14,000 lines) and the rows it was written from (written on the engine
        #: thread; dropped on the loop ``keep`` seconds after the last scrape)
        self._stream_text: tuple[list[StreamRow], str] = ([], "")
        self._keep = keep
        self._forget: asyncio.TimerHandle | None = None
        self._trim = Trimmer()
        #: Drifting streams with no DRIFT_START seen by this process (restored mid-drift) -> when a
        #: scrape first saw them drifting (engine thread only)
        self._seen_drifting: dict[tuple[str, str], float] = {}

    async def render(self) -> bytes:
        rows = await self.views.rows()
        c = self.counters
        redis = self.redis
        answered = sum(c.ingested.values()) + self.queue.depth
        copy = _Copy(
            ingested=dict(c.ingested),
            rejected=dict(c.rejected),
            events=dict(self.events.counts),
            latency=_hist_copy(c.latency),
            lag=_hist_copy(self.loop_lag.lag),
            stall=_hist_copy(self.loop_lag.stall),
            depth=self.queue.depth,
            keys=len(self.keys),
            started=dict(self.events.started),
            redis_up=self.redis is not None and self.redis.up,
            checkpoints=dict(redis.checkpoints) if redis else {"ok": 0, "error": 0},
            restores=dict(redis.restores) if redis else {},
            last_checkpoint=(redis.last_checkpoint or 0.0) if redis else 0.0,
            unsaved=answered - (redis.saved_samples if redis else 0),
            failures=dict(self.worker.failures),
            repairs=REPAIRS.count,
            dead=dict(self.stream.dead) if self.stream else None,
            claimed=self.stream.claimed if self.stream else 0,
            scrapes_ok=self.scrape.scrapes if self.scrape else None,
            scrapes_failed=self.scrape.errors if self.scrape else 0,
            view_builds=self.views.builds,
        )
        try:
            return await self.worker.offload(lambda: self._text(rows, copy))
        finally:
            if self._forget is not None:
                self._forget.cancel()
            self._forget = asyncio.get_running_loop().call_later(self._keep, self._forget_stream_text)

    def _forget_stream_text(self) -> None:
        """``STREAM_TEXT_KEEP`` after the last scrape: the text goes, and its pages back to the OS (a
        swap of one reference: a scrape writing the text meanwhile just writes it again next time)."""
        self._forget = None
        self._stream_text = ([], "")
        self._trim.now()

    def _text(self, rows: list[StreamRow], c: _Copy) -> bytes:
        w = Writer(ML, self.base)
        w.counter(
            "driftwatch_samples_ingested",
            "Samples applied to the detection engine.",
            FL,
            sorted(c.ingested.items()),
        )
        w.counter(
            "driftwatch_samples_rejected",
            "Samples (or bodies) rejected, by reason.",
            ("reason",),
            [((reason,), n) for reason, n in sorted(c.rejected.items())],
        )
        w.raw(self._streams(rows))
        w.gauge(
            "driftwatch_drift_since_timestamp_seconds",
            "When a Drifting stream's drift started (epoch seconds: its DRIFT_START's sample time; for a "
            "drift restored from a checkpoint, when this process first saw it). Only Drifting streams.",
            FL,
            self._since(rows, c.started),
        )
        w.counter(
            "driftwatch_drift_events",
            "Drift events (DRIFT_START, DRIFT_END); reason: the alarming detector of a start, how an "
            "end ended (recovered: back to the baseline; adopted: the drifted regime became the baseline).",
            (*FL, "type", "reason"),
            sorted(c.events.items()),
        )
        w.histogram(
            "driftwatch_ingest_latency_seconds", "Time to validate and enqueue one ingest request.", c.latency
        )
        w.histogram(
            "driftwatch_event_loop_lag_seconds",
            "How late the event loop runs a timer: the longest wait a request can meet.",
            c.lag,
        )
        w.histogram(
            "driftwatch_event_loop_stall_seconds",
            "Event-loop lag less the time its thread waited for a CPU: what the sidecar itself held it for.",
            c.stall,
        )
        w.gauge("driftwatch_queue_depth", "Samples waiting for the engine.", (), [((), c.depth)])
        w.gauge(
            "driftwatch_queue_capacity",
            "Queue bound in samples (429 beyond it).",
            (),
            [((), self.queue.capacity)],
        )
        w.gauge(
            "driftwatch_redis_up",
            "1 when Redis answers, 0 while degraded to memory only.",
            (),
            [((), 1.0 if c.redis_up else 0.0)],
        )
        w.gauge(
            "driftwatch_keys", "Distinct keys admitted (capped by spec.keys.maxKeys).", (), [((), c.keys)]
        )
        w.gauge(
            "driftwatch_keys_max",
            "The key cap (spec.keys.maxKeys): further keys fold into __overflow__.",
            (),
            [((), self.keys.cap)],
        )
        w.counter(
            "driftwatch_checkpoints",
            "Engine checkpoints written to Redis, by result.",
            ("result",),
            [((result,), c.checkpoints.get(result, 0)) for result in ("ok", "error")],
        )
        w.gauge(
            "driftwatch_unsaved_samples",
            "Samples answered 202 that no checkpoint in Redis holds yet: what a SIGKILL or an OOM kill "
            "would lose now.",
            (),
            [((), c.unsaved)],
        )
        w.gauge(
            "driftwatch_last_checkpoint_timestamp_seconds",
            "When the last checkpoint was written to Redis (epoch seconds; 0: none yet).",
            (),
            [((), c.last_checkpoint)],
        )
        if c.restores:
            w.counter(
                "driftwatch_checkpoint_restores",
                "Start-up restores by what was restored: own, sibling (another pod's), none, corrupt.",
                ("result",),
                [((r,), n) for r, n in c.restores.items()],
            )
        w.counter(
            "driftwatch_engine_failures",
            "Engine failures the sidecar survived: update, chunk, loop, stream_reset.",
            ("what",),
            [((what,), n) for what, n in c.failures.items()],
        )
        w.counter(
            "driftwatch_invalid_text_repairs",
            "Documents written with U+FFFD in place of text that cannot be encoded.",
            (),
            [((), c.repairs)],
        )
        if c.dead is not None:
            w.counter(
                "driftwatch_ingest_dead_letters",
                "Redis stream entries moved to P:ingest:dead, by reason.",
                ("reason",),
                [((r,), n) for r, n in sorted(c.dead.items())],
            )
            w.counter(
                "driftwatch_ingest_claimed",
                "Redis stream entries claimed from consumers of gone pods.",
                (),
                [((), c.claimed)],
            )
        if c.scrapes_ok is not None:
            w.counter(
                "driftwatch_scrapes",
                "Scrapes of the app's metrics endpoint, by result.",
                ("result",),
                [(("ok",), c.scrapes_ok), (("error",), c.scrapes_failed)],
            )
        w.counter(
            "driftwatch_stream_view_builds",
            "Per-stream views built on the engine thread (for /metrics and /v1/status); scrapes in "
            "between reuse the last one.",
            (),
            [((), c.view_builds)],
        )
        info = buildinfo.build_info()
        w.gauge(
            "driftwatch_build_info",  # buildinfo.METRIC, spelled out for tools that grep metric names
            "The DriftWatch build this process runs (always 1).",
            buildinfo.LABELS,
            [(tuple(info[k] for k in buildinfo.LABELS), 1.0)],
        )
        w.process()
        return w.text()

    def _streams(self, rows: list[StreamRow]) -> str:
        """The per-stream families' text, written once per set of rows."""
        done, text = self._stream_text
        if rows is done:
            return text
        w = Writer(ML, self.base)
        streams = [((r.feature, r.key), r) for r in rows]
        w.gauge(
            "driftwatch_drift_score",
            "Drift score of a stream in [0, 1].",
            FL,
            ((k, r.score) for k, r in streams),
        )
        w.gauge(
            "driftwatch_drift_state",
            "1 for the stream's current state.",
            (*FL, "state"),
            (((*k, st), 1.0 if r.state == st else 0.0) for k, r in streams for st in PHASES),
        )
        w.gauge(
            "driftwatch_drift_severity",
            "Severity of a stream: 0 none, 1 warning, 2 critical.",
            FL,
            ((k, SEVERITY_LEVEL.get(r.severity, 0)) for k, r in streams),
        )
        w.gauge(
            "driftwatch_baseline_mean",
            "Baseline mean of a numeric stream.",
            FL,
            ((k, r.baseline_mean) for k, r in streams if r.baseline_mean is not None),
        )
        w.gauge(
            "driftwatch_baseline_std",
            "Baseline standard deviation of a numeric stream.",
            FL,
            ((k, r.baseline_std) for k, r in streams if r.baseline_std is not None),
        )
        w.gauge(
            "driftwatch_baseline_quantile",
            "Quantiles of a numeric stream's baseline (what normal looks like), from its sketch: within "
            "1.6 % of the value.",
            QL,
            _quantile_rows(streams, baseline=True),
        )
        w.gauge(
            "driftwatch_current_quantile",
            "Quantiles of a numeric stream's current window (what it sees now), from its sketch: within "
            "1.6 % of the value.",
            QL,
            _quantile_rows(streams, baseline=False),
        )
        text = w.body()
        self._stream_text = (rows, text)
        return text

    def _since(
        self, rows: list[StreamRow], started: dict[tuple[str, str], float]
    ) -> list[tuple[tuple[str, str], float]]:
        """(feature, key) -> drift start of every Drifting row (engine thread)."""
        now = time.time()
        drifting = [(r.feature, r.key) for r in rows if r.state == DRIFTING]
        seen, now_drifting = self._seen_drifting, set(drifting)
        for k in [k for k in seen if k not in now_drifting]:
            del seen[k]
        out = []
        for k in drifting:
            t = started.get(k)
            if t is None:
                t = seen.setdefault(k, now)
            out.append((k, t))
        return out


def _quantile_rows(
    streams: list[tuple[tuple[str, str], StreamRow]], baseline: bool
) -> Iterator[tuple[tuple[str, str, str], float]]:
    """One family's samples, made as they are written (a list of them was ~6,000 tuples a scrape)."""
    for k, r in streams:
        qs = r.baseline_quantiles if baseline else r.current_quantiles
        if qs is not None:
            for label, v in zip(QUANTILE_LABELS, qs, strict=True):
                yield (*k, label), v

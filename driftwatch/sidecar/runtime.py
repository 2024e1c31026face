"""The composition root: builds the sidecar's parts from its settings, wires them, starts and stops
them. Nothing else in the package constructs a part or knows more than the parts it is given.

    sources (app routes, scrape, redis_stream, otlp) -> Ingest (validate -> admit -> account) -> Queue
    Queue -> EngineWorker (the engine, on its own thread) -> counters, DriftEvents
    readers (views, metrics, redis_sync) -> EngineWorker jobs
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from driftwatch.detect import Engine
from driftwatch.sidecar.admission import Admission
from driftwatch.sidecar.app import Routes, build_app, build_metrics_app
from driftwatch.sidecar.events import DriftEvents
from driftwatch.sidecar.ingest import Ingest, IngestCounters
from driftwatch.sidecar.looplag import LoopLag
from driftwatch.sidecar.metrics import Metrics
from driftwatch.sidecar.queue import Queue
from driftwatch.sidecar.settings import Settings
from driftwatch.sidecar.validate import Validator
from driftwatch.sidecar.views import StreamViews
from driftwatch.sidecar.worker import Applied, EngineWorker

if TYPE_CHECKING:  # optional parts whose libraries (redis-py, exposition parser, protobuf) load when used,
    # and the modules only Redis (checkpoints, scan reservoirs) or a ConfigMap baseline need
    from driftwatch.sidecar import state
    from driftwatch.sidecar.otlp import OtlpReceiver
    from driftwatch.sidecar.redis_stream import StreamReader
    from driftwatch.sidecar.redis_sync import RedisSync
    from driftwatch.sidecar.reservoirs import Reservoirs
    from driftwatch.sidecar.scrape import Scraper

log = logging.getLogger("driftwatch.sidecar")
#: seconds a SIGTERM may take in all: the pod's terminationGracePeriodSeconds defaults to 30
SHUTDOWN_BUDGET = 20.0


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = s = settings
        spec, limits = s.spec, s.limits
        self.validator = Validator(spec, limits.max_features, limits.max_future)
        self.queue = Queue(limits.queue_capacity, limits.max_batch, limits.batch_interval)
        self.admission = Admission(limits, spec.keys.max_keys, self.queue)
        self.counters = IngestCounters()
        self.ingest = Ingest(self.validator, self.admission, self.counters)
        self.events = DriftEvents(limits.events_max)
        # the scan reservoirs: only with spec.scan and a Redis to keep them in
        self.reservoirs: Reservoirs | None = None
        if s.redis_url is not None:
            from driftwatch.sidecar.reservoirs import Policy, Reservoirs

            policy = Policy.of(spec, limits.allowed_lateness)
            self.reservoirs = Reservoirs(policy) if policy is not None else None
        self.worker = EngineWorker(Engine(spec, name=s.monitor), self.queue, self._applied, self.reservoirs)
        self.views = StreamViews(self.worker)
        self.loop_lag = LoopLag()
        self.redis: RedisSync | None = None
        self.stream_reader: StreamReader | None = None
        if s.redis_url is not None:
            self._wire_redis(s.redis_url)
        self.scraper: Scraper | None = None
        self.otlp: OtlpReceiver | None = None
        if s.scrape is not None:
            from driftwatch.sidecar.scrape import Scraper  # the scrape parser: only when scraping

            self.scraper = Scraper(self.ingest, s.scrape)
        self.metrics = Metrics(
            s.monitor,
            s.namespace,
            self.counters,
            self.events,
            self.queue,
            self.admission.keys,
            self.views,
            self.worker,
            self.loop_lag,
            self.redis,
            self.scraper,
            self.stream_reader,
        )
        self.routes = Routes(
            s,
            self.ingest,
            self.queue,
            self.admission.keys,
            self.views,
            self.events.log,
            self.metrics,
            self.redis,
        )
        if s.otlp is not None:
            # protobuf and the OTLP classes: only when OTLP is configured (start time, RSS)
            from driftwatch.sidecar.otlp import OtlpReceiver

            self.otlp = OtlpReceiver(self.ingest, s.otlp, s.limits.body_limit, self.routes.authorized)
            self.routes.otlp = self.otlp.post_metrics
        self.restored_checkpoint = False  # a checkpoint was loaded (then no ConfigMap seeding)
        self._tasks: list[asyncio.Task[Any]] = []
        self._sources: list[asyncio.Task[Any]] = []

    def _wire_redis(self, url: str) -> None:
        # redis-py costs ~8 MB and ~0.1 s to import: only sidecars that use Redis pay for it
        from driftwatch.sidecar.commands import Commands
        from driftwatch.sidecar.redis_stream import StreamReader
        from driftwatch.sidecar.redis_sync import RedisSync
        from driftwatch.sidecar.store import Store

        s = self.settings
        store = Store(url, s.prefix, s.pod)
        commands = Commands(store, self.worker, self.reservoirs)
        redis = RedisSync(
            store,
            s,
            self.worker,
            self.events,
            self._capture,
            self._restore,
            self._fresh,
            saved=self._saved,
            reservoirs=self.reservoirs,
            commands=commands,
        )
        self.redis = redis
        self.events.on_event = redis.on_drift
        if s.stream.enabled:
            self.stream_reader = StreamReader(
                self.ingest,
                self.queue,
                url,
                store.ingest_key,
                store.ingest_dead_key,
                s.pod,
                s.stream,
                s.limits.body_limit,
                lambda: redis.up,
                redis.request_checkpoint,
            )

    def apps(self) -> list[web.Application]:
        """The main app, and the metrics port's when it has one."""
        apps = [build_app(self.routes)]
        if self.settings.metrics_port is not None:
            apps.append(build_metrics_app(self.routes))
        return apps

    # --- wiring callbacks ---------------------------------------------------------------------------------

    def _applied(self, applied: Applied) -> None:
        self.counters.applied(applied.ingested, applied.failed)
        if applied.events:
            self.events.record(applied.events)

    def _capture(self) -> state.SidecarState:
        """The parts' share of a checkpoint, at the instant its engine job starts: the stream entries
        whose samples that engine holds go with it (acknowledged once it is saved)."""
        from driftwatch.sidecar import state

        reader = self.stream_reader
        held = reader.held_through(self.queue.applied_seq) if reader is not None else []
        return state.capture(self.validator, self.admission, self.counters, self.events, held)

    def _saved(self, side: state.SidecarState) -> None:
        if self.stream_reader is not None:
            self.stream_reader.saved(side.stream)

    async def _restore(self, cp: state.Checkpoint, own: bool) -> None:
        """A checkpoint into the engine (proven usable first, stream by stream) and the parts. ``own``:
        this pod's; else a sibling's, which gives the baselines but not this pod's counters."""
        from driftwatch.sidecar import state

        s = self.settings
        dropped: list[str] = []

        def build() -> Engine:
            engine, bad = state.load_engine(cp.engine, s.spec, s.monitor)
            dropped.extend(bad)
            return engine

        await self.worker.replace(build)
        state.restore(cp.sidecar, self.validator, self.admission, self.counters, self.events, own=own)
        if self.stream_reader is not None:  # its entries are in this engine now: never apply them twice
            self.stream_reader.skip.update(i.encode() for i in cp.sidecar.stream)
        self.restored_checkpoint = True
        whose = "its own checkpoint" if own else f"the checkpoint of pod {cp.pod}"
        log.info("restored %s of %s (%d streams)", whose, cp.time, len(cp.engine["streams"]) - len(dropped))
        for what in dropped:
            log.error(
                "checkpoint of %s: stream %s is unusable and was left out (it learns again)", cp.pod, what
            )

    def _fresh(self) -> bool:
        """Nothing ingested or queued yet: restoring a checkpoint overwrites nothing live."""
        return not self.counters.ingested and self.queue.depth == 0

    async def _seed_baseline(self) -> None:
        """``baseline.mode: fromConfigMap``: fit baselines from the mounted ConfigMap's files before
        serving (contracts.md section 2). Raises BaselineDataError / OSError (the caller exits non-zero:
        a pod that cannot read its reference data must not pretend to detect against it)."""
        from driftwatch.detect.baseline_data import parse_baseline_data

        root = Path(self.settings.baseline_dir)
        data = await asyncio.to_thread(_read_dir, root)
        features = [f.name for f in self.settings.spec.features] or None
        parsed = parse_baseline_data(data, features)

        reservoirs = self.reservoirs

        def seed(engine: Engine) -> list[tuple[str, str]]:
            for (feature, key), values in parsed.items():
                engine.seed_baseline(feature, values, key=key)
                if reservoirs is not None:  # the seeded baseline is the scans' reference
                    reservoirs.seed(feature, key, values)
            return [(st.feature, st.type) for st in engine.streams()]

        kinds = await self.worker.call(seed, changes=True)
        for feature, key in parsed:
            self.admission.keys.fold(key)
            self.validator.seen.add(feature)
        for feature, kind in kinds:  # pin undeclared features to the type their seed gave them
            self.validator.types.setdefault(feature, kind)
        log.info(
            "seeded baselines of %d entries (%d values) from %s",
            len(data),
            sum(len(v) for v in parsed.values()),
            root,
        )

    # --- lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Restore (one quick Redis attempt) and seed before accepting, so the first sample meets the
        baseline it should."""
        self.worker.start()
        self._tasks.append(asyncio.create_task(self.loop_lag.run(), name="loop-lag"))
        if self.redis is not None:
            await self.redis.start()
            self._tasks.append(asyncio.create_task(self.redis.run(), name="redis"))
        if self.settings.spec.baseline.mode == "fromConfigMap" and not self.restored_checkpoint:
            await self._seed_baseline()  # a checkpoint already holds the baseline: seed only a fresh start
        if self.stream_reader is not None:
            self._sources.append(asyncio.create_task(self.stream_reader.run(), name="redis-stream"))
        if self.scraper is not None:
            self._sources.append(asyncio.create_task(self.scraper.run(), name="scrape"))
        self.ingest.accepting = True

    async def stop(self, save: bool = True) -> None:
        """Graceful: stop the sources, apply the whole queue, checkpoint and publish once more
        (``save=False``: a start that failed half-way must not overwrite a good checkpoint).

        Every step is bounded and all of them together by ``SHUTDOWN_BUDGET``, well inside the pod's
        termination grace period: a step that overruns (Redis gone, a stuck task) is logged and the
        next one runs. Before issue 12 a stuck step held the process until the kubelet's SIGKILL,
        which then lost everything since the last checkpoint."""
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_BUDGET
        self.ingest.accepting = False
        for t in self._sources:
            t.cancel()
        await _bounded(
            "stopping the sources", asyncio.gather(*self._sources, return_exceptions=True), 5, deadline
        )
        await _bounded("bodies in flight", self.ingest.settled(), 5, deadline)
        await _bounded("draining the queue", self.worker.flush(), 10, deadline)
        for t in self._tasks:
            t.cancel()
        await _bounded(
            "stopping the Redis task", asyncio.gather(*self._tasks, return_exceptions=True), 5, deadline
        )
        if self.redis is not None:
            if save:
                await _bounded("the final checkpoint", self.redis.final(), 10, deadline)
            await _bounded("closing Redis", self.redis.close(), 1, deadline)
        await _bounded("stopping the engine", self.worker.close(), 5, deadline + 5)


async def _bounded(what: str, aw: Awaitable[Any], cap: float, deadline: float) -> None:
    """``aw`` within ``cap`` seconds and before ``deadline`` (loop time); logged, not raised, when not."""
    left = min(cap, deadline - asyncio.get_running_loop().time())
    try:
        async with asyncio.timeout(max(0.0, left)):
            await aw
    except TimeoutError:
        log.error("shutdown: %s took longer than %.1fs; going on without it", what, left)


def _read_dir(root: Path) -> dict[str, str]:
    """A mounted ConfigMap's files; it also holds ``..data`` and ``..<timestamp>`` entries (the
    atomic-update symlinks), which are skipped."""
    return {
        p.name: p.read_text() for p in sorted(root.iterdir()) if not p.name.startswith(".") and p.is_file()
    }

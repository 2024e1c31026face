"""The engine worker: the only code that touches the detection engine, on one thread of its own.

Every ``batch_interval`` (at once when a full chunk waits) it takes a chunk from the queue and applies
it with one ``Engine.update`` per stream in its thread; reads of the whole engine (status, metrics,
summaries, checkpoints) are jobs it runs on the same thread between chunks. So the engine needs no
lock, a read never sees half a chunk, and the event loop never runs engine code: while numpy works
(it releases the GIL) or the thread's Python code waits for its turn, requests are served. What the
loop does per chunk is take it and merge the report (counts, events): microseconds.

Nothing the engine does stops the worker: a stream whose update raises is counted (``engine_error``)
and the rest of the chunk applied; a chunk that fails as a whole is counted and dropped; any other
error in the loop is logged and the loop goes on. (Before, one exception there ended the worker task
silently, and from then on every request got 429.) A stream whose update keeps raising on state it
restored is reset: it learns again rather than refuse its samples forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from driftwatch.detect import DriftEvent, Engine, InputError
from driftwatch.sidecar.memory import Trimmer
from driftwatch.sidecar.queue import Chunk, Queue, StreamKey

if TYPE_CHECKING:  # built (and imported) only with spec.scan and Redis
    from driftwatch.sidecar.reservoirs import Reservoirs

S = TypeVar("S")
T = TypeVar("T")
log = logging.getLogger("driftwatch.sidecar")
#: consecutive engine errors (not input errors) after which a stream is reset
RESET_AFTER = 3


@dataclass(slots=True)
class Applied:
    """The worker's report of one chunk, merged on the event loop."""

    seq: int
    events: list[DriftEvent] = field(default_factory=list)
    ingested: dict[StreamKey, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)  # samples the engine refused, by reason
    seconds: float = 0.0


@dataclass(slots=True)
class _Job(Generic[T]):
    #: called on the event loop when the job starts: the function to run on the engine thread
    make: Callable[[], Callable[[Engine], T]]
    done: asyncio.Future[T]


class EngineWorker:
    def __init__(
        self,
        engine: Engine,
        queue: Queue,
        on_applied: Callable[[Applied], None],
        reservoirs: Reservoirs | None = None,
    ) -> None:
        self.engine = engine
        self.queue = queue
        self.on_applied = on_applied
        #: with ``spec.scan``: every applied stream's values are sampled for scans (``reservoirs``)
        self.reservoirs = reservoirs
        #: bumped whenever the engine may have changed: readers cache their views by it
        self.version = 0
        self.errors = 0  # engine.update calls that raised
        #: what went wrong and was survived: ``update`` (a stream's update raised), ``chunk`` (a whole
        #: chunk failed), ``loop`` (the worker loop itself), ``stream_reset`` (a stream learnt again)
        self.failures = {"update": 0, "chunk": 0, "loop": 0, "stream_reset": 0}
        self._failing: dict[StreamKey, int] = {}  # consecutive engine errors per stream
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._trim = Trimmer()
        self._jobs: deque[_Job[Any]] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._flush_seq = 0  # take chunks at once until this one is applied
        self._task: asyncio.Task[None] | None = None
        queue.on_full = self._wake.set

    # --- reads and replacements, from the event loop ----------------------------------------------------

    async def call(self, fn: Callable[[Engine], T], changes: bool = False) -> T:
        """Run ``fn(engine)`` on the engine thread between two chunks; its result. ``changes``: it
        modifies the engine (views built before it are stale)."""
        try:
            return await self._submit(lambda: fn)
        finally:
            if changes:
                self.version += 1

    async def trim(self) -> None:
        """Memory freed on the loop since the last job back to the OS, on the engine thread (a trim of a
        heap of tens of MB takes milliseconds: not on the loop). After a checkpoint or a summary is
        written to Redis: its document outlives the job that built it, and the trim after that job."""
        await self.call(_nothing)

    async def call_with(self, capture: Callable[[], S], fn: Callable[[Engine, S], T]) -> T:
        """``fn(engine, capture())`` with ``capture`` taken on the event loop just before ``fn`` starts,
        so the two agree: every chunk the engine has seen is merged into the loop's state, no other."""
        return await self._submit(lambda: partial(_with, fn, capture()))

    async def _submit(self, make: Callable[[], Callable[[Engine], T]]) -> T:
        job: _Job[T] = _Job(make, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._wake.set()
        return await job.done

    async def offload(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the engine thread (it does not touch the engine): CPU work kept off the
        event loop without a second thread competing for the GIL."""
        return await self.call(lambda _: fn())

    async def replace(self, build: Callable[[], Engine]) -> Engine:
        """Swap in the engine ``build`` makes (a restored checkpoint), built on the engine thread."""

        def swap(_: Engine) -> Engine:
            self.engine = build()
            return self.engine

        return await self.call(swap, changes=True)

    # --- the worker task ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="engine-worker")

    async def _run(self) -> None:
        """Jobs first (each waits for at most one chunk), then a chunk: at once when one is full (a
        backlog is worked off without waiting) or a flush asks for it, otherwise every
        ``batch_interval``, so the engine's fixed cost per call is paid per batch."""
        loop = asyncio.get_running_loop()
        interval = self.queue.batch_interval
        due = loop.time() + interval
        try:
            while True:
                try:
                    # the jobs queued so far, no more: one queued while they run waits for at most
                    # one chunk (draining until none were left let a tight loop of reads starve
                    # the chunks -- the queue filled and ingest answered 429)
                    for _ in range(len(self._jobs)):
                        await self._run_job(self._jobs.popleft())
                    now = loop.time()
                    flushing = self.queue.applied_seq < self._flush_seq
                    if self.queue.full or flushing or self._closing or now >= due:
                        if now >= due:
                            due = now + interval
                        chunk = self.queue.take()
                        if chunk is not None:
                            self._merge(await self._apply_chunk(chunk))
                            continue
                        if self._closing:
                            return
                    if not self._jobs and not self.queue.full:
                        # asyncio.timeout, never wait_for: on Python 3.11 a wait_for cancelled just as
                        # its inner future completes swallows the cancellation (gh-86296), and a
                        # task that should stop runs on -- a shutdown that hangs
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(max(0.0, due - loop.time())):
                                await self._wake.wait()
                    self._wake.clear()
                except asyncio.CancelledError:
                    raise
                except Exception:  # a bug here must not end the worker (every request would get 429)
                    self.failures["loop"] += 1
                    log.exception("engine worker: step failed; going on")
                    await asyncio.sleep(interval)
        finally:
            for job in self._jobs:
                job.done.cancel()

    async def _apply_chunk(self, chunk: Chunk) -> Applied:
        """``_apply`` on the engine thread; a chunk that fails as a whole is counted as engine errors,
        never left unanswered (whoever waits for it -- a flush, the stream reader -- goes on)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, self._apply, chunk)
        except Exception:
            self.failures["chunk"] += 1
            log.exception("engine worker: chunk %d (%d samples) failed as a whole", chunk.seq, chunk.n)
            return Applied(chunk.seq, failed={"engine_error": chunk.n})

    async def _run_job(self, job: _Job[Any]) -> None:
        if job.done.done():  # its caller gave up (cancelled)
            return
        try:
            fn = job.make()
            result = await asyncio.get_running_loop().run_in_executor(self._thread, self._trimmed, fn)
        except Exception as e:
            if not job.done.done():
                job.done.set_exception(e)
            return
        if not job.done.done():
            job.done.set_result(result)

    async def flush(self) -> None:
        """Until everything queued so far has been applied (shutdown: before the last checkpoint)."""
        self._flush_seq = max(self._flush_seq, self.queue.last_seq)
        self._wake.set()
        await self.queue.wait_applied(self._flush_seq)

    async def close(self) -> None:
        """Apply everything queued, answer pending jobs, stop the task and the thread."""
        self._closing = True
        self._flush_seq = max(self._flush_seq, self.queue.last_seq)
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._thread.shutdown(wait=True)

    def _merge(self, applied: Applied) -> None:
        self.version += 1
        self.queue.done(applied.seq, applied.seconds)
        try:
            self.on_applied(applied)
        except Exception:  # a bug in a consumer must not stop the engine (every request would get 429)
            log.exception("recording chunk %d failed", applied.seq)

    # --- on the engine thread -----------------------------------------------------------------------------

    def _trimmed(self, fn: Callable[[Engine], T]) -> T:
        """A job, then the memory its temporaries held back to the OS (views and checkpoints of many
        streams are megabytes of short-lived objects)."""
        try:
            return fn(self.engine)
        finally:
            self._trim.now()

    def _apply(self, chunk: Chunk) -> Applied:
        out = Applied(chunk.seq)
        t0 = time.perf_counter()
        for stream, g in chunk.groups.items():
            feature, key = stream
            n = _size(g.values)
            try:
                values, ts = _values(g.values), _concat(g.ts)
                events = self.engine.update(feature, values, key=key, ts=ts)
                out.events += events
            except Exception as e:  # the engine must never take the sidecar down: count, log, go on
                reason = "wrong_type" if isinstance(e, InputError) else "engine_error"
                out.failed[reason] = out.failed.get(reason, 0) + n
                self.errors += 1
                self.failures["update"] += 1
                if self.errors <= 10 or self.errors % 1000 == 0:
                    log.exception("engine.update(%r, key=%r) failed on %d samples", feature, key, n)
                if reason == "engine_error":
                    self._failed(stream)
                continue
            self._failing.pop(stream, None)
            out.ingested[stream] = n
            if self.reservoirs is not None:
                self._sample(feature, key, values, ts, events)
        out.seconds = time.perf_counter() - t0
        self._trim.maybe()
        return out

    def _failed(self, stream: StreamKey) -> None:
        """A stream's update raised on something other than its input: after ``RESET_AFTER`` in a row
        its state is what fails (e.g. restored from a damaged checkpoint), so it is forgotten and
        learns again from its next samples."""
        self._failing[stream] = k = self._failing.get(stream, 0) + 1
        if k < RESET_AFTER:
            return
        del self._failing[stream]
        feature, key = stream
        if self.engine.forget(feature, key):
            self.failures["stream_reset"] += 1
            log.error("stream %r/%r failed %d times in a row: reset, it learns again", feature, key, k)

    def _sample(self, feature: str, key: str, values: Any, ts: np.ndarray, events: list[DriftEvent]) -> None:
        """Applied values into the scan reservoirs; a failure there never touches detection."""
        assert self.reservoirs is not None
        try:
            if any(e.evidence.get("reason") == "adopted" for e in events):
                self.reservoirs.adopted(feature, key)
            self.reservoirs.add(feature, key, values, ts)
        except Exception:
            self.errors += 1
            if self.errors <= 10 or self.errors % 1000 == 0:
                log.exception("sampling %r (key=%r) for scans failed", feature, key)


def _with(fn: Callable[[Engine, S], T], captured: S, engine: Engine) -> T:
    return fn(engine, captured)


def _nothing(engine: Engine) -> None:
    """A job that does nothing: what follows every job (a trim) is what it is for."""


def _size(parts: list[Any]) -> int:
    """Samples in a stream's parts (a part that is not a list or an array counts as one)."""
    return sum(len(p) if isinstance(p, list | np.ndarray) else 1 for p in parts)


def _values(parts: list[Any]) -> Any:
    """A stream's values: a float64 array, or a list of str for a categorical stream (whose parts are
    always lists of str)."""
    first = parts[0]
    if type(first) is list and first and type(first[0]) is str:
        return first if len(parts) == 1 else list(chain.from_iterable(parts))
    return _concat(parts)


def _concat(parts: list[Any]) -> np.ndarray:
    """float64 array from parts that are lists (single-sample requests) or arrays."""
    if len(parts) == 1:
        return np.asarray(parts[0], dtype=np.float64)
    return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])

"""The one way in: validate -> admit -> account, for every source (HTTP routes, scrape, Redis stream).

Sources decode their own transport (HTTP body, exposition text, stream entry) and hand the result
here; every rejection, whatever the source, is counted in ``driftwatch_samples_rejected_total`` in
this module and nowhere else. A full queue admits nothing of a batch: the source decides whether
that is a 429 (HTTP), a wait (the Redis stream, backpressure) or a skipped scrape.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from driftwatch.sidecar.admission import Admission
from driftwatch.sidecar.decode import BodyError, Rejections, loads, plain_envelope, split_ndjson
from driftwatch.sidecar.histogram import FastHistogram
from driftwatch.sidecar.queue import QueueFull, StreamKey
from driftwatch.sidecar.validate import SLICE, Batch, SampleBatch, Steps, Validator, run_steps


@dataclass
class IngestCounters:
    """What went in and what did not, kept as plain ints on the request path and turned into metric
    families only when Prometheus scrapes."""

    #: samples the engine applied, per stream (keys are capped, so this stays bounded)
    ingested: defaultdict[StreamKey, int] = field(default_factory=lambda: defaultdict(int))
    #: rejected samples (or bodies, for 400/413), by reason
    rejected: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: time to validate and enqueue one HTTP request
    latency: FastHistogram = field(default_factory=FastHistogram)

    def count(self, rejected: Rejections) -> None:
        for reason, n in rejected.by_reason.items():
            self.rejected[reason] += n

    def applied(self, ingested: Mapping[StreamKey, int], failed: Mapping[str, int]) -> None:
        """The engine worker's report of one chunk: applied per stream, refused by reason."""
        for stream, n in ingested.items():
            self.ingested[stream] += n
        for reason, n in failed.items():
            self.rejected[reason] += n


class ShuttingDown(Exception):
    """Shutdown began before this body could be taken (HTTP 503): nothing of it was admitted."""


@dataclass(slots=True, frozen=True)
class Outcome:
    """What became of one batch: ``full`` is set (and nothing was admitted) when the queue had no room."""

    accepted: int
    rejected: Rejections
    full: QueueFull | None = None


T = TypeVar("T")
ONE = Outcome(1, Rejections())
#: below this a body is a few samples: decoding it whole costs less than trying ``plain_envelope``
PLAIN_MIN_BYTES = 1024


class Ingest:
    """Sources call ``receive`` (a request body, from the event loop: a large body is validated and
    admitted in steps, letting other requests in between) or ``submit`` (a decoded body, all at once);
    a source that waits for room between the two halves calls ``prepare`` and ``admit_async``."""

    def __init__(self, validator: Validator, admission: Admission, counters: IngestCounters) -> None:
        self.validator = validator
        self.admission = admission
        self.counters = counters
        #: closed while starting and once shutdown began (HTTP answers 503)
        self.accepting = False
        self._busy = 0  # bodies being taken right now (see ``settled``)
        self._settled = asyncio.Event()
        self._settled.set()

    async def receive(
        self, body: bytes, now: float, ndjson: bool = False, telemetry: bool = False
    ) -> Outcome:
        """A ``POST /v1/samples`` (``telemetry``: ``/v1/telemetry``) body, JSON or NDJSON, by the
        cheapest way that fits: the plain batch read from the bytes, one plain sample, or the general
        path. Raises BodyError (counted) when it is not JSON or not a shape, ShuttingDown when
        shutdown began first (a slow upload that finished after it: it was answered 202 and then
        dropped before issue 12). From here to the answer the body counts as in flight: shutdown
        drains the queue only once none is (``settled``)."""
        if not self.accepting:
            raise ShuttingDown
        doc: Any = None
        if not ndjson and not telemetry and len(body) < PLAIN_MIN_BYTES:
            # a small JSON body, decoded and (the most frequent request: one plain sample) queued
            # right here: no await between the check above and the queue, so nothing is in flight
            # for ``settled`` to wait for, and no coroutine or event is needed for it
            doc = self.decode(body)
            if self.submit_one(doc, now):
                return ONE
        self._busy += 1
        self._settled.clear()
        try:
            return await self._receive(body, doc, now, ndjson, telemetry)
        finally:
            self._done()

    async def _receive(self, body: bytes, doc: Any, now: float, ndjson: bool, telemetry: bool) -> Outcome:
        """``doc``: the small body, already decoded (and not one plain sample); None: not decoded yet."""
        if ndjson:
            lines, bad = await self._stepwise(split_ndjson(body))
            batch: Batch = await self._stepwise(self.validator.ndjson_steps(lines, bad, now, telemetry))
        elif telemetry:
            batch = self._checked(self.validator.telemetry, self.decode(body), now)
        else:
            if doc is None:
                plain = self._plain(body)
                if plain is not None:
                    return self.admit(plain, now)
                doc = self.decode(body)
                if self.submit_one(doc, now):
                    return ONE
            batch = await self._stepwise(self._validate_steps(doc, now))
        return await self.admit_async(batch, now)

    async def take(self, items: list[Any], now: float, rejected: Rejections) -> Outcome:
        """Samples a source decoded from its own format and explains itself (OTLP): the envelope's
        ``samples`` list, validated and admitted in steps. ``rejected`` holds the source's own
        rejections (counted here with the rest) and receives every one of the validator's (its limit
        is the caller's: OTLP needs them all to count rejected data points). Raises ShuttingDown
        like ``receive``."""
        if not self.accepting:
            raise ShuttingDown
        self._busy += 1
        self._settled.clear()
        try:
            batch = await self._stepwise(self._sample_steps(items, now, SampleBatch(rejected=rejected)))
            return await self.admit_async(batch, now)
        finally:
            self._done()

    def _sample_steps(self, items: list[Any], now: float, batch: SampleBatch) -> Steps[Batch]:
        for start in range(0, len(items), SLICE):
            if start:
                yield
            self.validator.samples(items, now, batch, start, start + SLICE)
        return batch

    async def prepare(self, body: bytes, now: float) -> Batch:
        """A JSON body validated, not yet admitted. Raises BodyError (counted)."""
        plain = self._plain(body)
        return (
            plain if plain is not None else await self._stepwise(self._validate_steps(self.decode(body), now))
        )

    async def admit_async(self, batch: Batch, now: float) -> Outcome:
        return await self._stepwise(self._admit_steps(batch, now))

    async def settled(self) -> None:
        """Until no body is being taken (shutdown: after ``accepting`` is cleared, before the queue is
        drained, so that nothing answered 202 is admitted after the drain)."""
        while self._busy:
            await self._settled.wait()

    def _done(self) -> None:
        self._busy -= 1
        if not self._busy:
            self._settled.set()

    async def _stepwise(self, steps: Steps[T]) -> T:
        """Run a computation in steps, letting the event loop run other work at every step."""
        self._busy += 1
        self._settled.clear()
        try:
            while True:
                try:
                    next(steps)
                except StopIteration as done:
                    result: T = done.value
                    return result
                await asyncio.sleep(0)
        finally:
            self._done()

    def submit(self, doc: Any, now: float) -> Outcome:
        """A decoded body, validated and admitted at once (scraped samples: a few hundred at most)."""
        return self.admit(self.validate(doc, now), now)

    def submit_one(self, doc: Any, now: float) -> bool:
        """The single-sample fast path: True when ``doc`` was one plain numeric sample and is queued;
        False (nothing done) for anything else, which then takes the general path."""
        one = self.validator.one(doc)
        return one is not None and self.admission.admit_one(one[0], one[1], now)

    def decode(self, body: bytes) -> Any:
        """A JSON body; raises BodyError (counted) when it is not JSON."""
        try:
            return loads(body)
        except BodyError as e:
            self.counters.rejected[e.reason] += 1
            raise

    def validate(self, doc: Any, now: float) -> Batch:
        """Raises BodyError (counted) when the body is not a shape at all."""
        return run_steps(self._validate_steps(doc, now))

    def admit(self, batch: Batch, now: float) -> Outcome:
        return run_steps(self._admit_steps(batch, now))

    def reject_body(self, reason: str) -> None:
        """A body refused before decoding (too large)."""
        self.counters.rejected[reason] += 1

    # --- the steps, and the one place rejections are counted ------------------------------------------

    def _validate_steps(self, doc: Any, now: float) -> Steps[Batch]:
        try:
            return (yield from self.validator.body_steps(doc, now))
        except BodyError as e:
            self.counters.rejected[e.reason] += 1
            raise

    def _admit_steps(self, batch: Batch, now: float) -> Steps[Outcome]:
        """Admit a validated batch and count every rejection, its own and admission's."""
        try:
            n = yield from self.admission.admit_steps(batch, now)
        except QueueFull as e:
            self.counters.count(batch.rejected)
            self.counters.rejected["queue_full"] += batch.count
            return Outcome(0, batch.rejected, e)
        self.counters.count(batch.rejected)
        return Outcome(n, batch.rejected)

    def _plain(self, body: bytes) -> Batch | None:
        if len(body) < PLAIN_MIN_BYTES:
            return None
        plain = plain_envelope(body)
        return self.validator.plain(*plain) if plain is not None else None

    def _checked(self, validate: Callable[[Any, float], Batch], doc: Any, now: float) -> Batch:
        try:
            return validate(doc, now)
        except BodyError as e:
            self.counters.rejected[e.reason] += 1
            raise

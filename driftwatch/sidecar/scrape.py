"""Ingest path 2: scrape the app's own Prometheus endpoint, so an app instrumented with
prometheus-client needs no code change.

Per scrape and per key (the value of ``keyLabel``, or ``""``), each configured metric family becomes
samples of a feature named as configured:

* counter — the rate over the scrape interval, ``Δvalue / Δt`` (summed over the key's series; a
  counter reset counts the new value from zero);
* gauge (and untyped) — each series' value;
* histogram — this interval's observations, reconstructed from the bucket deltas by ``buckets.py``
  (shared with OTLP): each bucket's new count becomes that many samples at the bucket's midpoint (the
  +Inf bucket at the last finite bound), scaled down proportionally to at most ``maxSamples`` per
  scrape. Coarse buckets give a coarse distribution, but a shift across buckets — what drift is —
  shows up exactly;
* summary — the interval's mean, ``Δsum / Δcount``.

The first scrape only sets the reference for counters, histograms and summaries.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from driftwatch.sidecar import buckets as hist
from driftwatch.sidecar import shutdown, tls
from driftwatch.sidecar.ingest import Ingest
from driftwatch.sidecar.settings import ScrapeSettings

log = logging.getLogger("driftwatch.sidecar")


class ScrapeConverter:
    """Exposition text -> sample dicts (``{"feature", "value", "key"}``). Keeps the previous scrape's
    counters and buckets; no I/O, no clock (``t`` is passed in), so it is unit-testable."""

    def __init__(self, metrics: tuple[str, ...], key_label: str | None, max_samples: int = 1000) -> None:
        self.wanted: dict[str, str] = {}
        for m in metrics:
            self.wanted[m] = m
            for suffix in ("_total", "_info"):
                if m.endswith(suffix):
                    self.wanted.setdefault(m[: -len(suffix)], m)
        self.key_label = key_label
        self.max_samples = max_samples
        self.prev: dict[tuple[str, str], tuple[float, Any]] = {}  # (feature, key) -> (t, state)

    def convert(self, text: str, t: float) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for fam in text_string_to_metric_families(text):
            feature = self.wanted.get(fam.name)
            if feature is None:
                continue
            if fam.type == "counter":
                sums: defaultdict[str, float] = defaultdict(float)
                for s in fam.samples:
                    if s.name.endswith("_total") or s.name == fam.name:
                        sums[self._key(s.labels)] += s.value
                for key, v in sums.items():
                    prev = self._swap(feature, key, t, v)
                    if prev is not None and t > prev[0]:
                        delta = v - prev[1] if v >= prev[1] else v
                        out.append({"feature": feature, "key": key, "value": delta / (t - prev[0])})
            elif fam.type == "histogram":
                out += self._histogram(fam, feature, t)
            elif fam.type == "summary":
                acc: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
                for s in fam.samples:
                    if s.name.endswith("_sum"):
                        acc[self._key(s.labels)][0] += s.value
                    elif s.name.endswith("_count"):
                        acc[self._key(s.labels)][1] += s.value
                for key, (ssum, cnt) in acc.items():
                    prev = self._swap(feature, key, t, (ssum, cnt))
                    if prev is not None:
                        dsum, dcnt = ssum - prev[1][0], cnt - prev[1][1]
                        if dcnt < 0:
                            dsum, dcnt = ssum, cnt
                        if dcnt > 0:
                            out.append({"feature": feature, "key": key, "value": dsum / dcnt})
            else:  # gauge, untyped, unknown
                for s in fam.samples:
                    if math.isfinite(s.value):
                        out.append({"feature": feature, "key": self._key(s.labels), "value": float(s.value)})
        return out

    def _key(self, labels: dict[str, str]) -> str:
        return labels.get(self.key_label, "") if self.key_label else ""

    def _swap(self, feature: str, key: str, t: float, state: Any) -> tuple[float, Any] | None:
        prev = self.prev.get((feature, key))
        self.prev[(feature, key)] = (t, state)
        return prev

    def _histogram(self, fam: Any, feature: str, t: float) -> list[dict[str, Any]]:
        cum: defaultdict[str, defaultdict[float, float]] = defaultdict(lambda: defaultdict(float))
        for s in fam.samples:
            if s.name.endswith("_bucket") and "le" in s.labels:
                cum[self._key(s.labels)][float(s.labels["le"])] += s.value
        out: list[dict[str, Any]] = []
        for key, buckets in cum.items():
            bounds = sorted(buckets)
            now = [buckets[b] for b in bounds]
            prev = self._swap(feature, key, t, (bounds, now))
            if prev is None or prev[1][0] != bounds:
                continue  # first scrape, or the bucket layout changed: this one is the new reference
            counts = hist.decumulate(hist.interval(prev[1][1], now))  # a reset counts from zero
            out += [
                {"feature": feature, "key": key, "value": v}
                for v in hist.representative(bounds, counts, self.max_samples)
            ]
        return out


class Scraper:
    """The scrape loop: fetch, convert, hand the samples to ``Ingest`` (a full queue skips them: the
    next scrape carries the next interval's values)."""

    def __init__(self, ingest: Ingest, cfg: ScrapeSettings) -> None:
        self.ingest = ingest
        self.cfg = cfg
        self.converter = ScrapeConverter(cfg.metrics, cfg.key_label, cfg.max_samples)
        self.scrapes = 0
        self.errors = 0

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=min(10.0, max(1.0, self.cfg.interval)))
        # an https target is verified with a context of our own (system CAs, host name): aiohttp's
        # default one holds no CAs in the sidecar (tls.py); loading the bundle is blocking file I/O
        ctx = await asyncio.to_thread(tls.client_context) if self.cfg.url.startswith("https://") else None
        connector = aiohttp.TCPConnector(ssl=ctx) if ctx is not None else None
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            while True:
                shutdown.check()
                t0 = time.monotonic()
                try:
                    async with http.get(self.cfg.url) as resp:
                        resp.raise_for_status()
                        text = await resp.text()
                    self.submit(text, time.time())
                    self.scrapes += 1
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    self.errors += 1
                    if self.errors <= 5 or self.errors % 100 == 0:
                        log.warning("scrape %s failed (%d so far): %s", self.cfg.url, self.errors, e)
                await asyncio.sleep(max(0.0, self.cfg.interval - (time.monotonic() - t0)))

    def submit(self, text: str, now: float) -> int:
        samples = self.converter.convert(text, now)
        if not samples:
            return 0
        return self.ingest.submit({"samples": samples}, now).accepted

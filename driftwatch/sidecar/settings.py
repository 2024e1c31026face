"""The sidecar config file (contracts.md section 3), validated with errors that name the field.

The operator renders this file into the monitor's ConfigMap; a hand-written one works the same. Every
knob has a default so the minimal file is ``monitor: {name: x}``. Durations take seconds (number) or a
string like ``30s``/``5m``.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from driftwatch.vocab.rediskeys import monitor_prefix
from driftwatch.vocab.spec import (
    ConfigError,
    MonitorSpec,
    OtlpSpec,
    _int,
    _obj,
    _str,
    _unknown,
    parse_duration,
)

MIB = 1024 * 1024


def _duration(d: Mapping[str, Any], key: str, path: str, default: float, lo: float, hi: float) -> float:
    """Seconds from a number or a ``30s``/``5m`` string, bounded."""
    v = d.get(key, default)
    if isinstance(v, str):
        v = float(parse_duration(v, f"{path}.{key}"))
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= float(v) <= hi:
        raise ConfigError(f"{path}.{key}", f"must be a duration between {lo:g}s and {hi:g}s, got {v!r}")
    return float(v)


def _bool(d: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{path}.{key}", f"must be true or false, got {v!r}")
    return v


@dataclass(frozen=True)
class ScrapeSettings:
    """Ingest path 2: scrape the app's own Prometheus endpoint.

    ``metrics`` are family names as exposed (``http_requests_total`` or ``http_requests``); each
    becomes a feature of the same name. ``key_label`` splits series into per-key streams.
    """

    url: str
    interval: float = 15.0
    metrics: tuple[str, ...] = ()
    key_label: str | None = None
    max_samples: int = 1000  # per histogram per key per scrape

    @classmethod
    def parse(cls, d: Any, path: str, default_key_label: str | None) -> ScrapeSettings:
        d = _obj(d, path)
        _unknown(d, {"url", "interval", "metrics", "keyLabel", "maxSamples"}, path)
        url = _str(d, "url", path)
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{path}.url", f"must be an http(s) URL, got {url!r}")
        metrics = d.get("metrics")
        if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
            raise ConfigError(f"{path}.metrics", "must be a non-empty list of metric names")
        key_label = _str(d, "keyLabel", path) if "keyLabel" in d else default_key_label
        return cls(
            url=url,
            interval=_duration(d, "interval", path, 15.0, 0.1, 86400.0),
            metrics=tuple(metrics),
            key_label=key_label,
            max_samples=_int(d, "maxSamples", path, 1000, 1, 1_000_000),
        )


@dataclass(frozen=True)
class StreamIngestSettings:
    """Ingest path 3: the Redis stream ``P:ingest`` read with consumer group ``driftwatch``."""

    enabled: bool = True
    count: int = 100  # entries per XREADGROUP
    block: float = 1.0
    #: an entry pending this long on any consumer is claimed (XAUTOCLAIM): its pod is gone. Live pods
    #: hold entries pending until a checkpoint holds them, so this must exceed checkpointInterval;
    #: unset, it is 4 x checkpointInterval and at least 2 minutes (``Settings.parse``)
    claim_idle: float = 120.0
    #: an entry delivered more often than this without being acknowledged killed whoever took it:
    #: dead-lettered instead of delivered again
    max_deliveries: int = 5

    @classmethod
    def parse(cls, d: Any, path: str) -> StreamIngestSettings:
        d = _obj(d, path)
        _unknown(d, {"enabled", "count", "block", "claimIdle", "maxDeliveries"}, path)
        return cls(
            enabled=_bool(d, "enabled", path, True),
            count=_int(d, "count", path, 100, 1, 10_000),
            block=_duration(d, "block", path, 1.0, 0.01, 60.0),
            claim_idle=_duration(d, "claimIdle", path, 0.0, 0.0, 7 * 86400.0),  # 0: derived
            max_deliveries=_int(d, "maxDeliveries", path, 5, 1, 1000),
        )


@dataclass(frozen=True)
class Limits:
    """Protection: the sidecar must never become the app's problem."""

    body_limit: int = MIB
    queue_capacity: int = 200_000  # samples waiting for the engine
    max_batch: int = 50_000  # samples per engine step (then the loop yields)
    batch_interval: float = 0.05
    dedup_window: int = 100_000  # ids remembered
    allowed_lateness: float | None = 300.0  # None: no watermark
    max_future: float = 300.0  # a ts further ahead than this is rejected (it would poison the watermark)
    max_features: int = 100  # when the spec declares none
    events_max: int = 10_000  # kept in memory for /v1/events

    @classmethod
    def parse(cls, d: Any, path: str) -> Limits:
        d = _obj(d, path)
        allowed = {"bodyLimit", "queueCapacity", "maxBatch", "batchInterval", "dedupWindow"}
        allowed |= {"allowedLateness", "maxFuture", "maxFeatures", "eventsMax"}
        _unknown(d, allowed, path)
        lateness: float | None = None
        if d.get("allowedLateness", 300.0) is not None:
            lateness = _duration(d, "allowedLateness", path, 300.0, 0.0, 366 * 86400.0)
        return cls(
            body_limit=_int(d, "bodyLimit", path, MIB, 1024, 256 * MIB),
            queue_capacity=_int(d, "queueCapacity", path, 200_000, 1, 100_000_000),
            max_batch=_int(d, "maxBatch", path, 50_000, 1, 10_000_000),
            batch_interval=_duration(d, "batchInterval", path, 0.05, 0.001, 10.0),
            dedup_window=_int(d, "dedupWindow", path, 100_000, 0, 100_000_000),
            allowed_lateness=lateness,
            max_future=_duration(d, "maxFuture", path, 300.0, 0.0, 366 * 86400.0),
            max_features=_int(d, "maxFeatures", path, 100, 1, 10_000),
            events_max=_int(d, "eventsMax", path, 10_000, 1, 10_000_000),
        )


@dataclass(frozen=True)
class Settings:
    """Everything the sidecar needs, defaults filled in."""

    monitor: str
    namespace: str
    spec: MonitorSpec
    pod: str
    redis_url: str | None = None
    key_prefix: str = "driftwatch"
    host: str = "127.0.0.1"
    port: int = 8476
    metrics_host: str = "0.0.0.0"
    metrics_port: int | None = 9476  # None: /metrics only on the main port
    limits: Limits = field(default_factory=Limits)
    #: where the ``spec.baseline.configMap`` ConfigMap is mounted (``baseline.mode: fromConfigMap``)
    baseline_dir: str = "/etc/driftwatch/baseline"
    checkpoint_interval: float = 30.0
    publish_interval: float = 10.0
    token: str | None = None
    scrape: ScrapeSettings | None = None
    stream: StreamIngestSettings = field(default_factory=StreamIngestSettings)
    #: ``POST /v1/metrics`` (OTLP/HTTP); None: no route, and the OTLP libraries are never imported
    otlp: OtlpSpec | None = None

    @property
    def prefix(self) -> str:
        """``P`` of contracts.md section 4."""
        return monitor_prefix(self.key_prefix, self.namespace, self.monitor)

    @classmethod
    def parse(cls, d: Any, env: Mapping[str, str] | None = None, base_dir: Path | None = None) -> Settings:
        env = os.environ if env is None else env
        d = _obj(d, "config")
        _unknown(d, {"monitor", "spec", "redis", "listen", "limits", "state", "auth", "ingest"}, "config")
        mon = _obj(d.get("monitor"), "monitor")
        _unknown(mon, {"name", "namespace"}, "monitor")
        name = _str(mon, "name", "monitor", "default")
        namespace = _str(mon, "namespace", "monitor", "default")
        spec = MonitorSpec.parse(d.get("spec"), "spec")

        redis = _obj(d.get("redis"), "redis")
        _unknown(redis, {"url", "keyPrefix"}, "redis")
        redis_url = _str(redis, "url", "redis") if redis.get("url") is not None else None
        if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("redis.url", f"must be a redis://, rediss:// or unix:// URL, got {redis_url!r}")
        key_prefix = _str(redis, "keyPrefix", "redis", "driftwatch")

        listen = _obj(d.get("listen"), "listen")
        _unknown(listen, {"host", "port", "metricsHost", "metricsPort"}, "listen")
        metrics_port: int | None = None  # null or 0: /metrics on the main port only
        if listen.get("metricsPort", 9476) is not None:
            metrics_port = _int(listen, "metricsPort", "listen", 9476, 0, 65535) or None

        state = _obj(d.get("state"), "state")
        _unknown(state, {"checkpointInterval", "publishInterval", "baselineDir"}, "state")

        auth = _obj(d.get("auth"), "auth")
        _unknown(auth, {"tokenFile", "tokenEnv"}, "auth")
        token = None
        if "tokenFile" in auth:
            tf = Path(_str(auth, "tokenFile", "auth"))
            if base_dir is not None and not tf.is_absolute():
                tf = base_dir / tf
            try:
                token = tf.read_text().strip()
            except OSError as e:
                raise ConfigError("auth.tokenFile", f"cannot read {tf}: {e.strerror}") from None
        elif "tokenEnv" in auth:
            var = _str(auth, "tokenEnv", "auth")
            token = env.get(var) or None
            if token is None:
                raise ConfigError("auth.tokenEnv", f"environment variable {var} is unset or empty")
        if token is not None and not token:
            raise ConfigError("auth", "token is empty")

        # ingest: the sidecar file's own block wins over spec.ingest (which the operator copies verbatim)
        ingest_path = "ingest" if "ingest" in d else "spec.ingest"
        ingest = _obj(d.get("ingest", spec.extra.get("ingest")), ingest_path)
        _unknown(ingest, {"scrape", "redisStream", "otlp"}, ingest_path)
        scrape = None
        if ingest.get("scrape") is not None:
            scrape = ScrapeSettings.parse(ingest["scrape"], f"{ingest_path}.scrape", spec.keys.label)
        otlp = None
        if ingest.get("otlp") is not None:
            otlp = OtlpSpec.parse(ingest["otlp"], f"{ingest_path}.otlp")
            if otlp.key_attribute is None and spec.keys.label is not None:
                otlp = replace(otlp, key_attribute=spec.keys.label)
        stream = StreamIngestSettings.parse(ingest.get("redisStream"), f"{ingest_path}.redisStream")

        checkpoint_interval = _duration(state, "checkpointInterval", "state", 30.0, 0.1, 86400.0)
        if not stream.claim_idle:
            stream = replace(stream, claim_idle=max(120.0, 4 * checkpoint_interval))
        elif stream.enabled and redis_url is not None and stream.claim_idle <= checkpoint_interval:
            raise ConfigError(
                f"{ingest_path}.redisStream.claimIdle",
                f"must exceed state.checkpointInterval ({checkpoint_interval:g}s): a live pod holds entries "
                "pending until a checkpoint holds them, and would lose them to another pod",
            )
        return cls(
            monitor=name,
            namespace=namespace,
            spec=spec,
            pod=env.get("POD_NAME") or socket.gethostname(),
            redis_url=redis_url,
            key_prefix=key_prefix,
            host=_str(listen, "host", "listen", "127.0.0.1"),
            port=_int(listen, "port", "listen", 8476, 0, 65535),
            metrics_host=_str(listen, "metricsHost", "listen", "0.0.0.0"),
            metrics_port=metrics_port,
            limits=Limits.parse(d.get("limits"), "limits"),
            baseline_dir=_str(state, "baselineDir", "state", "/etc/driftwatch/baseline"),
            checkpoint_interval=checkpoint_interval,
            publish_interval=_duration(state, "publishInterval", "state", 10.0, 0.1, 86400.0),
            token=token,
            scrape=scrape,
            stream=stream,
            otlp=otlp,
        )


def load(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read a YAML or JSON config file. Raises ConfigError (field ``config``) when it cannot be read."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError("config", f"cannot read {p}: {e.strerror}") from None
    try:
        if p.suffix == ".json":
            doc = json.loads(text)
        else:
            import yaml

            doc = yaml.safe_load(text)
    except ValueError as e:  # json.JSONDecodeError and yaml.YAMLError both derive from it (YAMLError below)
        raise ConfigError("config", f"{p} is not valid JSON: {e}") from None
    except Exception as e:  # yaml.YAMLError
        raise ConfigError("config", f"{p} is not valid YAML: {e}") from None
    return Settings.parse(doc, env=env, base_dir=p.parent)

"""The DriftMonitor spec as Python objects, validated with errors that name the field.

One model serves every boundary that reads a spec: the operator (the CRD already checks most of it at
the API server; this is the second line), the sidecar's rendered config file, and ``driftwatch replay
--monitor``. Every default lives here, so zero configuration gives the same behaviour everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

FeatureType = Literal["numeric", "categorical", "auto"]
Transform = Literal["auto", "none", "log"]
Preset = Literal["auto", "zscore-consecutive", "sustained-zscore"]
BaselineMode = Literal["learned", "fromWindow", "fromConfigMap"]
Seasonality = Literal["auto", "none", "daily", "weekly"]

FEATURE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,62}$")
#: ``spec.scan.tests``: driftwatch.detect.batch's tests (a unit test keeps the two equal)
SCAN_TESTS = ("auto", "ks", "cvm", "ad", "chi2", "g", "psi", "jensenshannon", "wasserstein")


class ConfigError(ValueError):
    """A bad value in a spec. ``field`` is the dotted path, e.g. ``spec.features[1].type``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- small typed readers: each names the field it rejects -------------------------------------------


def _obj(d: Any, path: str) -> Mapping[str, Any]:
    if d is None:
        return {}
    if not isinstance(d, Mapping):
        raise ConfigError(path, f"must be an object, got {type(d).__name__}")
    return d


def _unknown(d: Mapping[str, Any], allowed: set[str], path: str) -> None:
    extra = sorted(set(d) - allowed)
    if extra:
        raise ConfigError(f"{path}.{extra[0]}", f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _int(d: Mapping[str, Any], key: str, path: str, default: int, lo: int, hi: int) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{path}.{key}", f"must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise ConfigError(f"{path}.{key}", f"must be between {lo} and {hi}, got {v}")
    return v


def _float(d: Mapping[str, Any], key: str, path: str, default: float, lo: float, hi: float) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ConfigError(f"{path}.{key}", f"must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ConfigError(f"{path}.{key}", f"must be between {lo:g} and {hi:g}, got {v}")
    return v


def _str(d: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise ConfigError(f"{path}.{key}", f"must be a string, got {v!r}")
    return v


def _enum(d: Mapping[str, Any], key: str, path: str, default: str, choices: tuple[str, ...]) -> Any:
    v = d.get(key, default)
    if v not in choices:
        raise ConfigError(f"{path}.{key}", f"must be one of {', '.join(choices)}, got {v!r}")
    return v


# --- the spec ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSpec:
    """One reported feature. ``type: auto`` is decided by the first values seen (numbers -> numeric)."""

    name: str
    type: FeatureType = "auto"
    #: numeric only: ``auto`` log-transforms a feature whose baseline is positive and right-skewed
    transform: Transform = "auto"

    @classmethod
    def parse(cls, d: Any, path: str) -> FeatureSpec:
        if isinstance(d, str):  # shorthand: features: [latency_ms, plan]
            d = {"name": d}
        d = _obj(d, path)
        _unknown(d, {"name", "type", "transform"}, path)
        if "name" not in d:
            raise ConfigError(f"{path}.name", "is required")
        name = _str(d, "name", path)
        if not FEATURE_NAME.match(name):
            raise ConfigError(f"{path}.name", f"must match {FEATURE_NAME.pattern}, got {name!r}")
        ftype = _enum(d, "type", path, "auto", ("numeric", "categorical", "auto"))
        transform = _enum(d, "transform", path, "auto", ("auto", "none", "log"))
        if ftype == "categorical" and "transform" in d and transform != "auto":
            raise ConfigError(f"{path}.transform", "applies to numeric features only")
        return cls(name, ftype, transform)


@dataclass(frozen=True)
class KeysSpec:
    """Per-key streams (per endpoint, tenant, model version), capped so label values stay bounded."""

    label: str | None = None
    max_keys: int = 200

    @classmethod
    def parse(cls, d: Any, path: str) -> KeysSpec:
        d = _obj(d, path)
        _unknown(d, {"label", "maxKeys"}, path)
        label = _str(d, "label", path) if "label" in d else None
        return cls(label, _int(d, "maxKeys", path, 200, 1, 10_000))


@dataclass(frozen=True)
class BaselineSpec:
    """Where the reference distribution comes from.

    ``learned``: the first ``min_samples`` samples (then refined up to ``window``, frozen once Stable
    except for a slow update while Stable). ``fromWindow``: samples whose timestamps fall in
    [start, end) (ISO 8601, naive = UTC, or epoch seconds; ``start_ts``/``end_ts`` are the parsed
    epoch seconds). ``fromConfigMap``: raw reference samples from the named ConfigMap, which the
    sidecar feeds to ``Engine.seed_baseline`` (docs/contracts.md section 2).
    """

    mode: BaselineMode = "learned"
    min_samples: int = 100
    window: int = 1000
    start: str | None = None
    end: str | None = None
    config_map: str | None = None
    # samples a drift must persist before its regime becomes the baseline (0 = never: a rollout gate
    # wants the old baseline kept); None = the default, twice the baseline's size (docs/detection.md)
    adopt_after: int | None = None
    # ``adopt.after`` given as a duration ("3d"): seconds of drift (needs timestamps), else 0
    adopt_seconds: float = 0.0
    # auto | none | daily | weekly: a seasonal profile learned from timestamps (docs/detection.md)
    seasonality: Seasonality = "auto"

    @classmethod
    def parse(cls, d: Any, path: str) -> BaselineSpec:
        d = _obj(d, path)
        allowed = {"mode", "minSamples", "window", "start", "end", "configMap", "adopt", "seasonality"}
        _unknown(d, allowed, path)
        mode = _enum(d, "mode", path, "learned", ("learned", "fromWindow", "fromConfigMap"))
        min_samples = _int(d, "minSamples", path, 100, 10, 1_000_000)
        window = _int(d, "window", path, max(1000, min_samples), 10, 10_000_000)
        if window < min_samples:
            raise ConfigError(f"{path}.window", f"must be >= minSamples ({min_samples}), got {window}")
        start = _time_str(d, "start", path)
        end = _time_str(d, "end", path)
        cm = _str(d, "configMap", path) if "configMap" in d else None
        if mode == "fromWindow" and (start is None or end is None):
            raise ConfigError(
                f"{path}.start" if start is None else f"{path}.end",
                "mode fromWindow needs both start and end",
            )
        if start is not None and end is not None and parse_time(start) >= parse_time(end):
            raise ConfigError(f"{path}.end", f"must be after start ({start}), got {end}")
        if mode == "fromConfigMap" and not cm:
            raise ConfigError(f"{path}.configMap", "mode fromConfigMap needs configMap")
        adopt, adopt_s = _adopt_after(d.get("adopt"), f"{path}.adopt")
        seasonality = _enum(d, "seasonality", path, "auto", ("auto", "none", "daily", "weekly"))
        return cls(mode, min_samples, window, start, end, cm, adopt, adopt_s, seasonality)

    @property
    def start_ts(self) -> float | None:
        """``start`` as epoch seconds (None when unset)."""
        return None if self.start is None else parse_time(self.start)

    @property
    def end_ts(self) -> float | None:
        """``end`` as epoch seconds (None when unset)."""
        return None if self.end is None else parse_time(self.end)


def _adopt_after(d: Any, path: str) -> tuple[int | None, float]:
    """``adopt: {after: N | <duration> | never}`` -> (samples, 0 (never) or None (the default); seconds
    when a duration such as ``3d`` was given, else 0)."""
    if d is None:
        return None, 0.0
    d = _obj(d, path)
    _unknown(d, {"after"}, path)
    if "after" not in d:
        return None, 0.0
    v = d["after"]
    if v == "never":
        return 0, 0.0
    if isinstance(v, str):
        return None, float(parse_duration(v, f"{path}.after"))
    return _int(d, "after", path, 0, 10, 100_000_000), 0.0


def parse_time(text: str) -> float:
    """Epoch seconds from an epoch-seconds string or ISO 8601 (naive = UTC; a trailing Z is UTC).

    >>> parse_time("1700000000"), parse_time("2023-11-14T22:13:20Z")
    (1700000000.0, 1700000000.0)
    """
    c = text.strip()
    try:
        v = float(c)
    except ValueError:
        pass
    else:
        if not math.isfinite(v):
            raise ValueError(f"not a finite time: {text!r}")
        return v
    t = datetime.fromisoformat(c.replace("Z", "+00:00") if c.endswith(("Z", "z")) else c)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


def _time_str(d: Mapping[str, Any], key: str, path: str) -> str | None:
    """A time field as its canonical string: ISO 8601 / epoch-seconds strings, numbers (epoch) and
    datetimes (YAML reads unquoted timestamps as such) are accepted; anything else names the field."""
    if key not in d or d[key] is None:
        return None
    v = d[key]
    if isinstance(v, datetime):
        v = (v if v.tzinfo else v.replace(tzinfo=UTC)).isoformat()
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        v = repr(v)
    if not isinstance(v, str):
        raise ConfigError(f"{path}.{key}", f"must be an ISO 8601 timestamp or epoch seconds, got {v!r}")
    try:
        parse_time(v)
    except ValueError:
        raise ConfigError(
            f"{path}.{key}", f"must be an ISO 8601 timestamp or epoch seconds, got {v!r}"
        ) from None
    return v


@dataclass(frozen=True)
class SensitivitySpec:
    """The one knob: expected samples between false alarms, per stream. Score cut-offs for severity."""

    false_alarms_per: int = 10_000
    warning: float = 0.2
    critical: float = 0.5

    @classmethod
    def parse(cls, d: Any, path: str) -> SensitivitySpec:
        d = _obj(d, path)
        _unknown(d, {"falseAlarmsPer", "warning", "critical"}, path)
        fap = _int(d, "falseAlarmsPer", path, 10_000, 100, 100_000_000)
        warning = _float(d, "warning", path, 0.2, 0.0, 1.0)
        critical = _float(d, "critical", path, 0.5, 0.0, 1.0)
        if warning > critical:
            raise ConfigError(f"{path}.warning", f"must be <= critical ({critical}), got {warning}")
        return cls(fap, warning, critical)


@dataclass(frozen=True)
class RecoverySpec:
    consecutive_normal: int = 50

    @classmethod
    def parse(cls, d: Any, path: str) -> RecoverySpec:
        d = _obj(d, path)
        _unknown(d, {"consecutiveNormal"}, path)
        return cls(_int(d, "consecutiveNormal", path, 50, 1, 1_000_000))


@dataclass(frozen=True)
class ReservoirSpec:
    """The samples sidecars keep for scans (docs/redis-keys.md): per stream and pod, a uniform sample of
    ``size`` values in every ``bucket`` seconds, and one of ``reference_size`` values of a pinned
    reference (the baseline's samples, or a fixed window's)."""

    size: int = 128
    bucket: int = 300
    reference_size: int = 2048

    @classmethod
    def parse(cls, d: Any, path: str) -> ReservoirSpec:
        d = _obj(d, path)
        _unknown(d, {"size", "bucket", "referenceSize"}, path)
        bucket = parse_duration(_str(d, "bucket", path, "5m"), f"{path}.bucket")
        if not 60 <= bucket <= 86400:
            raise ConfigError(f"{path}.bucket", f"must be between 1m and 1d, got {d.get('bucket')!r}")
        return cls(
            size=_int(d, "size", path, 128, 8, 4096),
            bucket=bucket,
            reference_size=_int(d, "referenceSize", path, 2048, 64, 65536),
        )


#: ``spec.scan.reference``: the baseline's samples
REFERENCE_BASELINE = "baseline"
ReferenceKind = Literal["baseline", "offset", "window"]


@dataclass(frozen=True)
class Reference:
    """``spec.scan.reference`` parsed: ``baseline``; ``offset`` (a duration: the current window that
    long ago, e.g. ``7d`` -- a weekly cycle is then normal); or a fixed ``window`` ``START/END``."""

    kind: ReferenceKind
    offset: int = 0
    start: float = 0.0
    end: float = 0.0

    @classmethod
    def parse(cls, text: str, path: str) -> Reference:
        if text == REFERENCE_BASELINE:
            return cls("baseline")
        if "/" in text:
            first, _, second = text.partition("/")
            try:
                start, end = parse_time(first), parse_time(second)
            except ValueError:
                raise ConfigError(
                    path, f"START/END must be ISO 8601 timestamps or epoch seconds, got {text!r}"
                ) from None
            if start >= end:
                raise ConfigError(path, f"END must be after START, got {text!r}")
            return cls("window", start=start, end=end)
        try:
            return cls("offset", offset=parse_duration(text, path))
        except ConfigError:
            raise ConfigError(
                path,
                f"must be baseline, a duration like 7d (the same hours that long ago) or START/END, "
                f"got {text!r}",
            ) from None


@dataclass(frozen=True)
class ScanSpec:
    """The scan CronJob (``driftwatch scan``): two-sample tests of the ``current`` window against the
    ``reference`` one, over the samples the sidecars keep (``reservoir``). A monitor without
    ``spec.scan`` has no CronJob and its sidecars keep no samples."""

    schedule: str = "*/15 * * * *"
    current: str = "1h"
    reference: str = "7d"
    #: as ``driftwatch compare --tests``: test names (the first that applies to a feature's type) and
    #: ``FEATURE=TEST`` overrides
    tests: tuple[str, ...] = ("auto",)
    alpha: float = 0.05
    #: the effect floor for every feature (None: each test's default) and per feature
    threshold: float | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    min_samples: int = 20
    #: scans kept in ``status.scans`` (newest first)
    history: int = 10
    #: the Job's ``activeDeadlineSeconds``
    timeout: str = "10m"
    reservoir: ReservoirSpec = field(default_factory=ReservoirSpec)

    @classmethod
    def parse(cls, d: Any, path: str) -> ScanSpec:
        d = _obj(d, path)
        allowed = {"schedule", "current", "reference", "tests", "alpha", "threshold", "thresholds"}
        allowed |= {"minSamples", "history", "timeout", "reservoir"}
        _unknown(d, allowed, path)
        schedule = _str(d, "schedule", path, "*/15 * * * *")
        if len(schedule.split()) != 5 and not schedule.startswith("@"):
            raise ConfigError(f"{path}.schedule", f"must be a 5-field cron expression, got {schedule!r}")
        current = _str(d, "current", path, "1h")
        parse_duration(current, f"{path}.current")
        reference = _str(d, "reference", path, "7d")
        Reference.parse(reference, f"{path}.reference")
        timeout = _str(d, "timeout", path, "10m")
        parse_duration(timeout, f"{path}.timeout")
        tests = d.get("tests", list(cls.tests))
        if not isinstance(tests, list) or not tests:
            raise ConfigError(f"{path}.tests", "must be a non-empty list")
        for i, t in enumerate(tests):
            name, eq, test = t.rpartition("=") if isinstance(t, str) else ("", "", t)
            if test not in SCAN_TESTS or (eq and not FEATURE_NAME.match(name)):
                known = ", ".join(SCAN_TESTS)
                raise ConfigError(f"{path}.tests[{i}]", f"must be one of {known} or FEATURE=TEST, got {t!r}")
        threshold = _float(d, "threshold", path, 0.0, 0.0, 1e6) if d.get("threshold") is not None else None
        raw_thresholds = _obj(d.get("thresholds"), f"{path}.thresholds")
        thresholds = {
            str(k): _float(raw_thresholds, k, f"{path}.thresholds", 0.0, 0.0, 1e6) for k in raw_thresholds
        }
        return cls(
            schedule=schedule,
            current=current,
            reference=reference,
            tests=tuple(tests),
            alpha=_float(d, "alpha", path, 0.05, 1e-6, 0.5),
            threshold=threshold,
            thresholds=thresholds,
            min_samples=_int(d, "minSamples", path, 20, 1, 1_000_000),
            history=_int(d, "history", path, 10, 0, 100),
            timeout=timeout,
            reservoir=ReservoirSpec.parse(d.get("reservoir"), f"{path}.reservoir"),
        )

    @property
    def current_seconds(self) -> int:
        return parse_duration(self.current)

    @property
    def timeout_seconds(self) -> int:
        return parse_duration(self.timeout)

    @property
    def reference_window(self) -> Reference:
        return Reference.parse(self.reference, "spec.scan.reference")

    @property
    def retention(self) -> int:
        """Seconds a time bucket must outlive its end so every scheduled scan finds both windows: the
        current window, the offset when the reference is one, and two buckets of slack (a bucket's
        samples are counted by its middle; a scan may start late)."""
        ref = self.reference_window
        return self.current_seconds + (ref.offset if ref.kind == "offset" else 0) + 2 * self.reservoir.bucket


@dataclass(frozen=True)
class GateSpec:
    """What a rollout gate compares, and what its verdict does (docs/rollout-gating.md).

    ``compare``: ``baseline`` -- the monitor's phase (every pod's current window against the baseline
    it learned); ``stable-pods`` -- the canary pods' current windows against the stable pods', both
    taken at the same time, so the daily cycle and the load of the moment cancel. Pods are grouped by
    ``rollouts-pod-template-hash`` (Argo Rollouts) or ``pod-template-hash``. ``min_samples``: samples
    each group needs (per stream) before stable-pods decides. ``fail_on``: the least severity of a
    difference that fails. ``mode: shadow`` computes and reports the verdict but always passes.
    """

    compare: Literal["baseline", "stable-pods"] = "baseline"
    mode: Literal["enforce", "shadow"] = "enforce"
    fail_on: Literal["warning", "critical"] = "warning"
    min_samples: int = 200

    @classmethod
    def parse(cls, d: Any, path: str) -> GateSpec:
        d = _obj(d, path)
        _unknown(d, {"compare", "mode", "failOn", "minSamples"}, path)
        return cls(
            _enum(d, "compare", path, "baseline", ("baseline", "stable-pods")),
            _enum(d, "mode", path, "enforce", ("enforce", "shadow")),
            _enum(d, "failOn", path, "warning", ("warning", "critical")),
            _int(d, "minSamples", path, 200, 10, 10_000_000),
        )


def _seconds(d: Mapping[str, Any], key: str, path: str, default: float, lo: float, hi: float) -> float:
    """Seconds from a number or a ``30s``/``5m`` string, bounded (the sidecar file's duration shape)."""
    v = d.get(key, default)
    if isinstance(v, str):
        v = float(parse_duration(v, f"{path}.{key}"))
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= float(v) <= hi:
        raise ConfigError(f"{path}.{key}", f"must be a duration between {lo:g}s and {hi:g}s, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class ScrapeSpec:
    """``spec.ingest.scrape``: the app's own Prometheus endpoint, scraped by the sidecar."""

    url: str
    metrics: tuple[str, ...]
    interval: float = 15.0
    key_label: str | None = None
    max_samples: int = 1000

    @classmethod
    def parse(cls, d: Any, path: str) -> ScrapeSpec:
        d = _obj(d, path)
        _unknown(d, {"url", "interval", "metrics", "keyLabel", "maxSamples"}, path)
        if "url" not in d:
            raise ConfigError(f"{path}.url", "is required")
        url = _str(d, "url", path)
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{path}.url", f"must be an http(s) URL, got {url!r}")
        metrics = d.get("metrics")
        if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) and m for m in metrics):
            raise ConfigError(f"{path}.metrics", "must be a non-empty list of metric names")
        return cls(
            url=url,
            metrics=tuple(metrics),
            interval=_seconds(d, "interval", path, 15.0, 0.1, 86400.0),
            key_label=_str(d, "keyLabel", path) if "keyLabel" in d else None,
            max_samples=_int(d, "maxSamples", path, 1000, 1, 1_000_000),
        )


@dataclass(frozen=True)
class RedisStreamSpec:
    """``spec.ingest.redisStream``: the stream ``P:ingest``, read with consumer group ``driftwatch``."""

    enabled: bool = True
    count: int = 100
    block: float = 1.0

    @classmethod
    def parse(cls, d: Any, path: str) -> RedisStreamSpec:
        d = _obj(d, path)
        _unknown(d, {"enabled", "count", "block"}, path)
        enabled = d.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{path}.enabled", f"must be true or false, got {enabled!r}")
        return cls(
            enabled=enabled,
            count=_int(d, "count", path, 100, 1, 10_000),
            block=_seconds(d, "block", path, 1.0, 0.01, 60.0),
        )


#: OTLP metric names (the OpenTelemetry API allows 255 characters)
OTLP_METRIC_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-/]{0,254}$")
#: OTLP metrics per monitor (each is a feature: the feature cap is the engine's)
OTLP_MAX_METRICS = 100


@dataclass(frozen=True)
class OtlpSpec:
    """``spec.ingest.otlp``: OpenTelemetry metrics the app exports over OTLP/HTTP to the sidecar's
    ``POST /v1/metrics``. ``metrics`` maps each OTLP metric name to the feature it feeds: a list of
    names (each metric is the feature of the same name) or a mapping ``metric: feature``.
    ``key_attribute`` names the data-point (or else resource) attribute whose value is the key;
    ``max_samples`` caps the samples one histogram data point becomes, per key and export."""

    metrics: tuple[tuple[str, str], ...]
    key_attribute: str | None = None
    max_samples: int = 1000

    @classmethod
    def parse(cls, d: Any, path: str) -> OtlpSpec:
        d = _obj(d, path)
        _unknown(d, {"metrics", "keyAttribute", "maxSamples"}, path)
        raw = d.get("metrics")
        mpath = f"{path}.metrics"
        pairs: list[tuple[str, str]]
        if isinstance(raw, list) and raw and all(isinstance(m, str) for m in raw):
            pairs = [(m, m) for m in raw]
        elif isinstance(raw, Mapping) and raw and all(isinstance(v, str) for v in raw.values()):
            pairs = [(str(m), v) for m, v in raw.items()]
        else:
            raise ConfigError(
                mpath, "must be a non-empty list of metric names or a mapping of metric name to feature"
            )
        if len(pairs) > OTLP_MAX_METRICS:
            raise ConfigError(mpath, f"at most {OTLP_MAX_METRICS} metrics, got {len(pairs)}")
        seen: set[str] = set()
        for metric, feature in pairs:
            if not OTLP_METRIC_NAME.match(metric):
                raise ConfigError(mpath, f"metric name must match {OTLP_METRIC_NAME.pattern}, got {metric!r}")
            if metric in seen:
                raise ConfigError(mpath, f"metric {metric!r} is listed twice")
            seen.add(metric)
            if not FEATURE_NAME.match(feature):
                where = f"{mpath}.{metric}" if isinstance(raw, Mapping) else mpath
                raise ConfigError(
                    where,
                    f"feature name must match {FEATURE_NAME.pattern}, got {feature!r}"
                    + ("" if isinstance(raw, Mapping) else " (map a longer metric name to a feature)"),
                )
        key_attribute = None
        if "keyAttribute" in d:
            key_attribute = _str(d, "keyAttribute", path)
            if not 0 < len(key_attribute) <= 255:
                raise ConfigError(f"{path}.keyAttribute", "must be 1 to 255 characters")
        return cls(
            metrics=tuple(pairs),
            key_attribute=key_attribute,
            max_samples=_int(d, "maxSamples", path, 1000, 1, 1_000_000),
        )


@dataclass(frozen=True)
class IngestSpec:
    """``spec.ingest``: how samples reach the sidecar besides HTTP on localhost. Validated here, where
    the operator and the CRD can refuse it, so a sidecar never meets a spec it would exit on."""

    scrape: ScrapeSpec | None = None
    redis_stream: RedisStreamSpec = field(default_factory=RedisStreamSpec)
    #: None: no ``POST /v1/metrics`` (and the sidecar never loads the OTLP libraries)
    otlp: OtlpSpec | None = None

    @classmethod
    def parse(cls, d: Any, path: str) -> IngestSpec:
        d = _obj(d, path)
        _unknown(d, {"scrape", "redisStream", "otlp"}, path)
        scrape = ScrapeSpec.parse(d["scrape"], f"{path}.scrape") if d.get("scrape") is not None else None
        otlp = OtlpSpec.parse(d["otlp"], f"{path}.otlp") if d.get("otlp") is not None else None
        return cls(scrape, RedisStreamSpec.parse(d.get("redisStream"), f"{path}.redisStream"), otlp)


@dataclass(frozen=True)
class MonitorSpec:
    """A whole ``DriftMonitor.spec``. Unknown top-level fields (selector, sidecar, alerts, ...) that
    only the operator reads are kept verbatim in ``extra``."""

    features: tuple[FeatureSpec, ...] = ()
    keys: KeysSpec = field(default_factory=KeysSpec)
    baseline: BaselineSpec = field(default_factory=BaselineSpec)
    sensitivity: SensitivitySpec = field(default_factory=SensitivitySpec)
    preset: Preset = "auto"
    recovery: RecoverySpec = field(default_factory=RecoverySpec)
    #: None: no scan CronJob, and the sidecars keep no samples for one
    scan: ScanSpec | None = None
    gate: GateSpec = field(default_factory=GateSpec)
    ingest: IngestSpec = field(default_factory=IngestSpec)
    extra: Mapping[str, Any] = field(default_factory=dict)

    #: fields parsed here; anything else at the top level is the operator's (and the CRD's) business
    OPERATOR_FIELDS = frozenset({"selector", "sidecar", "alerts", "ingest", "redis", "injection"})

    @classmethod
    def parse(cls, d: Any, path: str = "spec") -> MonitorSpec:
        d = _obj(d, path)
        _unknown(
            d,
            {"features", "keys", "baseline", "sensitivity", "preset", "recovery", "scan", "gate"}
            | cls.OPERATOR_FIELDS,
            path,
        )
        raw_features = d.get("features", [])
        if not isinstance(raw_features, list):
            raise ConfigError(f"{path}.features", "must be a list")
        features = tuple(FeatureSpec.parse(f, f"{path}.features[{i}]") for i, f in enumerate(raw_features))
        seen: set[str] = set()
        for i, f in enumerate(features):
            if f.name in seen:
                raise ConfigError(f"{path}.features[{i}].name", f"duplicate feature {f.name!r}")
            seen.add(f.name)
        preset = _enum(d, "preset", path, "auto", ("auto", "zscore-consecutive", "sustained-zscore"))
        ingest = IngestSpec.parse(d.get("ingest"), f"{path}.ingest")
        if ingest.otlp is not None and seen:
            types = {f.name: f.type for f in features}
            for metric, feature in ingest.otlp.metrics:
                if feature not in types:
                    raise ConfigError(
                        f"{path}.ingest.otlp.metrics",
                        f"metric {metric!r} feeds feature {feature!r}, "
                        f"which {path}.features does not declare",
                    )
                if types[feature] == "categorical":
                    raise ConfigError(
                        f"{path}.ingest.otlp.metrics",
                        f"metric {metric!r} feeds feature {feature!r}, which is categorical "
                        "(OTLP values are numbers)",
                    )
        return cls(
            features=features,
            keys=KeysSpec.parse(d.get("keys"), f"{path}.keys"),
            baseline=BaselineSpec.parse(d.get("baseline"), f"{path}.baseline"),
            sensitivity=SensitivitySpec.parse(d.get("sensitivity"), f"{path}.sensitivity"),
            preset=preset,
            recovery=RecoverySpec.parse(d.get("recovery"), f"{path}.recovery"),
            scan=ScanSpec.parse(d["scan"], f"{path}.scan") if d.get("scan") is not None else None,
            gate=GateSpec.parse(d.get("gate"), f"{path}.gate"),
            ingest=ingest,
            extra={k: v for k, v in d.items() if k in cls.OPERATOR_FIELDS},
        )

    def feature(self, name: str) -> FeatureSpec | None:
        """The declared feature, or None. With no features declared every name is accepted (auto)."""
        for f in self.features:
            if f.name == name:
                return f
        return None

    def accepts(self, name: str) -> bool:
        return not self.features or self.feature(name) is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_manifest(doc: Any) -> tuple[str, str, MonitorSpec]:
    """(name, namespace, spec) from a whole DriftMonitor manifest (as ``kubectl apply -f`` takes)."""
    doc = _obj(doc, "manifest")
    if doc.get("kind", "DriftMonitor") != "DriftMonitor":
        raise ConfigError("kind", f"must be DriftMonitor, got {doc.get('kind')!r}")
    meta = _obj(doc.get("metadata"), "metadata")
    name = str(meta.get("name", "replay"))
    namespace = str(meta.get("namespace", "default"))
    return name, namespace, MonitorSpec.parse(doc.get("spec"), "spec")


_DURATION = re.compile(r"^(\d+)(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, path: str = "duration") -> int:
    """``"15m"`` -> 900 seconds. One unit only: Kubernetes users know this shape from Prometheus."""
    m = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not m or int(m.group(1)) == 0:
        raise ConfigError(path, f"must be a positive duration like 30s, 15m, 1h, 7d; got {text!r}")
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]

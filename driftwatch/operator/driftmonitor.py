"""A DriftMonitor as the operator sees it: the engine's ``MonitorSpec`` plus the operator-only fields.

``config.MonitorSpec`` keeps ``selector``, ``sidecar``, ``injection`` and ``redis`` verbatim in
``extra``; they are read here, so the shared model stays about detection. The API server has already
checked their shape against the CRD schema, so parsing here is lenient about absent keys and strict
only where a wrong value would do harm (e.g. an empty selector selecting every pod).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driftwatch.operator.options import OperatorOptions
from driftwatch.redisconn import RedisTarget, has_credentials, redact
from driftwatch.vocab.quantity import parse_quantity
from driftwatch.vocab.rediskeys import MonitorKeys
from driftwatch.vocab.spec import ConfigError, MonitorSpec

SIDECAR_PATH = "spec.sidecar"
#: what a sidecar's resources may name (the CRD says the same)
RESOURCES = ("cpu", "memory", "ephemeral-storage")


@dataclass(frozen=True)
class Selector:
    """A ``metav1.LabelSelector``; ``matches`` implements its semantics for pod labels."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    @classmethod
    def parse(cls, d: Any, path: str = "spec.selector") -> Selector:
        if not isinstance(d, Mapping):
            raise ConfigError(path, "is required (matchLabels or matchExpressions)")
        labels = d.get("matchLabels") or {}
        exprs = tuple(
            (str(e["key"]), str(e["operator"]), tuple(str(v) for v in e.get("values") or ()))
            for e in d.get("matchExpressions") or ()
        )
        if not labels and not exprs:
            raise ConfigError(path, "must have matchLabels or matchExpressions")
        return cls({str(k): str(v) for k, v in labels.items()}, exprs)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for key, op, values in self.match_expressions:
            present = key in labels
            if op == "In" and not (present and labels[key] in values):
                return False
            if op == "NotIn" and present and labels[key] in values:
                return False
            if op == "Exists" and not present:
                return False
            if op == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True)
class Monitor:
    """One DriftMonitor: identity, the parsed spec, and the operator's resolved settings for it."""

    name: str
    namespace: str
    uid: str
    generation: int
    raw_spec: Mapping[str, Any]
    spec: MonitorSpec
    selector: Selector
    injection_enabled: bool
    image: str
    pull_policy: str
    requests: Mapping[str, Any]
    limits: Mapping[str, Any]
    redis_url: str
    key_prefix: str

    @classmethod
    def from_body(cls, body: Mapping[str, Any], options: OperatorOptions) -> Monitor:
        meta = body.get("metadata") or {}
        raw = dict(body.get("spec") or {})
        spec = MonitorSpec.parse(raw, "spec")
        sidecar = raw.get("sidecar") or {}
        resources = sidecar.get("resources") or {}
        redis = raw.get("redis") or {}
        requests = {**options.sidecar_requests, **(resources.get("requests") or {})}
        limits = {**options.sidecar_limits, **(resources.get("limits") or {})}
        check_resources(requests, limits, resources)
        return cls(
            name=str(meta.get("name", "")),
            namespace=str(meta.get("namespace", "")),
            uid=str(meta.get("uid", "")),
            generation=int(meta.get("generation") or 0),
            raw_spec=raw,
            spec=spec,
            selector=Selector.parse(raw.get("selector")),
            injection_enabled=bool((raw.get("injection") or {}).get("enabled", True)),
            image=allowed_image(sidecar.get("image"), options),
            pull_policy=str(sidecar.get("imagePullPolicy") or options.sidecar_pull_policy),
            requests=requests,
            limits=limits,
            redis_url=monitor_redis_url(redis.get("url"), options),
            key_prefix=str(redis.get("keyPrefix") or options.key_prefix),
        )

    @property
    def child_name(self) -> str:
        """Name of every child object (ConfigMap, Service, ...): kinds differ, so one name serves all."""
        return f"driftwatch-{self.name}"

    @property
    def keys(self) -> MonitorKeys:
        """This monitor's Redis keys (``P`` = ``keys.prefix``; docs/redis-keys.md)."""
        return MonitorKeys.of(self.key_prefix, self.namespace, self.name)

    def spec_hash(self) -> str:
        """A short digest of the spec; on the ConfigMap, so a changed spec shows as a changed hash."""
        raw = json.dumps(self.raw_spec, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


def allowed_image(image: Any, options: OperatorOptions) -> str:
    """The sidecar image: the operator's, or one the platform team listed (``--allowed-image``).

    A DriftMonitor's author must not choose what runs inside other teams' pods: anything else is
    refused here (the monitor is not injected, its Ready condition names the field)."""
    if not image or image == options.sidecar_image:
        return options.sidecar_image
    if image in options.allowed_images:
        return str(image)
    allowed = ", ".join((options.sidecar_image, *options.allowed_images))
    raise ConfigError(
        f"{SIDECAR_PATH}.image", f"{image!r} is not an allowed sidecar image (allowed: {allowed})"
    )


def check_resources(requests: Mapping[str, Any], limits: Mapping[str, Any], own: Mapping[str, Any]) -> None:
    """Every quantity valid and no request above its limit -- with the operator's defaults merged in,
    which the CRD cannot see. The field named is the monitor's own where it set one."""
    for kind, values in (("requests", requests), ("limits", limits)):
        for name, value in values.items():
            if name not in RESOURCES:
                raise ConfigError(
                    f"{SIDECAR_PATH}.resources.{kind}.{name}", f"must be one of {', '.join(RESOURCES)}"
                )
            try:
                parse_quantity(value)
            except ValueError as e:
                raise ConfigError(f"{SIDECAR_PATH}.resources.{kind}.{name}", str(e)) from None
    for name, request in requests.items():
        if name in limits and parse_quantity(request) > parse_quantity(limits[name]):
            own_request = name in (own.get("requests") or {})
            field_ = f"{SIDECAR_PATH}.resources.{'requests' if own_request else 'limits'}.{name}"
            raise ConfigError(
                field_,
                f"request {request} is above limit {limits[name]}: every pod would be refused "
                "(set both, or stay within the operator's defaults)",
            )


def monitor_redis_url(url: Any, options: OperatorOptions) -> str:
    """``spec.redis.url`` (validated, never with credentials) or the operator's Redis."""
    if not url:
        return options.redis_url
    text = str(url)
    if has_credentials(text):
        raise ConfigError(
            "spec.redis.url",
            f"must not carry credentials ({redact(text)}): a spec is readable by everyone who can read "
            "the monitor; use a Redis without a password in the URL",
        )
    try:
        RedisTarget.parse(text, env={})
    except ValueError as e:
        raise ConfigError("spec.redis.url", str(e)) from None
    return text

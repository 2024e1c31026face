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

from driftwatch.config import ConfigError, MonitorSpec
from driftwatch.operator.options import OperatorOptions


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

    def to_query(self) -> str:
        """The ``labelSelector=`` query string form, for list calls."""
        parts = [f"{k}={v}" for k, v in sorted(self.match_labels.items())]
        for key, op, values in self.match_expressions:
            if op == "In":
                parts.append(f"{key} in ({','.join(values)})")
            elif op == "NotIn":
                parts.append(f"{key} notin ({','.join(values)})")
            elif op == "Exists":
                parts.append(key)
            else:
                parts.append(f"!{key}")
        return ",".join(parts)


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
        return cls(
            name=str(meta.get("name", "")),
            namespace=str(meta.get("namespace", "")),
            uid=str(meta.get("uid", "")),
            generation=int(meta.get("generation") or 0),
            raw_spec=raw,
            spec=spec,
            selector=Selector.parse(raw.get("selector")),
            injection_enabled=bool((raw.get("injection") or {}).get("enabled", True)),
            image=str(sidecar.get("image") or options.sidecar_image),
            pull_policy=str(sidecar.get("imagePullPolicy") or options.sidecar_pull_policy),
            requests={**options.sidecar_requests, **(resources.get("requests") or {})},
            limits={**options.sidecar_limits, **(resources.get("limits") or {})},
            redis_url=str(redis.get("url") or options.redis_url),
            key_prefix=str(redis.get("keyPrefix") or options.key_prefix),
        )

    @property
    def child_name(self) -> str:
        """Name of every child object (ConfigMap, Service, ...): kinds differ, so one name serves all."""
        return f"driftwatch-{self.name}"

    @property
    def redis_prefix(self) -> str:
        """``P`` of the Redis key schema (contracts.md section 4)."""
        return f"{self.key_prefix}:{self.namespace}:{self.name}"

    def spec_hash(self) -> str:
        """A short digest of the spec; on the ConfigMap, so a changed spec shows as a changed hash."""
        raw = json.dumps(self.raw_spec, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()[:16]

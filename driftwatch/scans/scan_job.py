"""One scan: read the monitor, the samples of both windows, run the batch tests, write the result.

``driftwatch scan`` runs this in the scan CronJob's pod, as the Job's ServiceAccount (whose Role may get
this monitor and patch its status, nothing else), with the Redis URL the operator gave the Job. It
writes ``status.lastScan`` and ``status.scans`` (a merge patch of the status subresource guarded by the
resourceVersion it read, retried on a conflict) and the scan's entry of the monitor's history. The
operator turns a new ``lastScan`` into an Event, metrics and alerts (the Job's Role has no more rights).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from driftwatch.detect import InputError
from driftwatch.detect.batch import Options, compare
from driftwatch.history import stream_log
from driftwatch.kube.client import Kube, KubeError, path_for
from driftwatch.redisconn import AnyRedis
from driftwatch.scans import reservoir_read, windows
from driftwatch.scans.pooling import Pooled, pool
from driftwatch.scans.scan_status import DRIFT, FAILED, NO_DRIFT, NOT_ENOUGH_DATA, ScanResult, status_patch
from driftwatch.vocab.names import KIND
from driftwatch.vocab.rediskeys import MonitorKeys
from driftwatch.vocab.spec import ConfigError, MonitorSpec, ScanSpec

log = logging.getLogger("driftwatch.scan")


class ScanError(Exception):
    """The scan could not run: the message says why (and is safe to show: no URL, no secret)."""


@dataclass(frozen=True)
class Target:
    namespace: str
    name: str
    key_prefix: str

    @property
    def keys(self) -> MonitorKeys:
        return MonitorKeys.of(self.key_prefix, self.namespace, self.name)


def options_of(scan: ScanSpec) -> Options:
    general = tuple(t for t in scan.tests if "=" not in t) or ("auto",)
    per_feature = dict(t.split("=", 1) for t in scan.tests if "=" in t)
    return Options(
        alpha=scan.alpha,
        tests=general,
        feature_tests=per_feature,
        threshold=scan.threshold,
        feature_thresholds=dict(scan.thresholds),
        min_samples=scan.min_samples,
    )


async def read_monitor(kube: Kube, target: Target) -> tuple[dict[str, Any], ScanSpec]:
    try:
        body = await kube.get(KIND, target.namespace, target.name)
    except KubeError as e:
        raise ScanError(f"cannot read DriftMonitor {target.namespace}/{target.name}: {e.message}") from None
    if body is None:
        raise ScanError(f"DriftMonitor {target.namespace}/{target.name} not found")
    try:
        spec = MonitorSpec.parse(body.get("spec"), "spec")
    except ConfigError as e:
        raise ScanError(f"invalid spec: {e}") from None
    if spec.scan is None:
        raise ScanError("spec.scan is not set: the monitor has no scan")
    return body, spec.scan


async def run_scan(redis: AnyRedis, target: Target, scan: ScanSpec, now: float) -> ScanResult:
    """The comparison of both windows (no writes)."""
    wins = windows.resolve(scan, now)
    keys, width = target.keys, scan.reservoir.bucket
    cur_read = await reservoir_read.read_window(redis, keys, wins.current, width)
    if wins.pinned:
        ref_read = await reservoir_read.read_pinned(redis, keys)
    else:
        assert wins.reference is not None
        ref_read = await reservoir_read.read_window(redis, keys, wins.reference, width)
    seed = int(now)
    ref, cur = pool(ref_read.parts, seed), pool(cur_read.parts, seed + 1)
    result = ScanResult(
        now,
        NOT_ENOUGH_DATA,
        wins,
        samples={"reference": sum(ref.seen.values()), "current": sum(cur.seen.values())},
        pods={"reference": len(ref.pods), "current": len(cur.pods)},
    )
    if not ref.values or not cur.values:
        side = "reference" if not ref.values else "current"
        result.reason = f"no samples in the {side} window"
        return result
    result.comparison = _compare(ref, cur, scan)
    tested = [f for f in result.comparison["features"] if f.get("statistic") is not None]
    if not tested:
        result.reason = f"no feature had {scan.min_samples} values in both windows"
        return result
    result.result = DRIFT if result.comparison["drifted"] else NO_DRIFT
    return result


def _compare(ref: Pooled, cur: Pooled, scan: ScanSpec) -> dict[str, Any]:
    """``compare`` on the features both windows have; a feature on one side only is reported untested."""
    both = [f for f in ref.values if f in cur.values]
    features: list[dict[str, Any]] = []
    doc: dict[str, Any] = {"drifted": False, "share": 0.0, "features": features}
    if both:
        try:
            out = compare(
                {f: ref.values[f] for f in both},
                {f: cur.values[f] for f in both},
                {f: ref.types[f] for f in both},
                options_of(scan),
            )
        except InputError as e:
            raise ScanError(f"feature {e}") from None
        doc.update(drifted=out.drifted, share=out.share)
        features += [f.to_dict() for f in out.features]
    features += [_untested(f, ref, cur) for f in sorted(set(ref.values) ^ set(cur.values))]
    return doc


def _untested(feature: str, ref: Pooled, cur: Pooled) -> dict[str, Any]:
    return {
        "feature": feature,
        "type": ref.types.get(feature) or cur.types.get(feature),
        "test": None,
        "statistic": None,
        "pValue": None,
        "effect": None,
        "threshold": None,
        "drifted": False,
        "severity": "none",
        "nReference": len(ref.values.get(feature, ())),
        "nCurrent": len(cur.values.get(feature, ())),
    }


async def write_status(kube: Kube, target: Target, result: ScanResult, keep: int) -> None:
    """``lastScan`` + ``scans``, guarded by the resourceVersion read, retried on a conflict."""
    path = path_for(KIND, target.namespace, target.name, "status")
    for attempt in range(5):
        body = await kube.get(KIND, target.namespace, target.name)
        if body is None:
            raise ScanError(f"DriftMonitor {target.namespace}/{target.name} disappeared")
        previous = (body.get("status") or {}).get("scans") or []
        patch = {
            "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
            "status": status_patch(result, previous if isinstance(previous, list) else [], keep),
        }
        try:
            await kube.request("PATCH", path, body=patch, content_type="application/merge-patch+json")
            return
        except KubeError as e:
            if e.status != 409 or attempt == 4:
                raise ScanError(f"cannot write status: {e.message}") from None


async def record(redis: AnyRedis, target: Target, result: ScanResult) -> None:
    await stream_log.append(redis, target.keys.history, result.history_entry(target.namespace, target.name))


def failed(now: float, reason: str) -> ScanResult:
    return ScanResult(now, FAILED, reason=reason)

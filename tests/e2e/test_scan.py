"""Scans end to end on the local control plane: the operator (as its ServiceAccount) renders
``spec.scan`` into a CronJob, the controller-manager's CronJob controller creates a Job from it on
schedule, and the Job's command -- run here as a process (there is no kubelet to run it) with the Job's
own ServiceAccount token and environment -- scans the samples real sidecar processes left in a real
Redis and writes ``status.lastScan``. A stable window is not flagged, a drifted one is; the operator
posts the Events and counts the scans; the history endpoint returns both scans.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.stack import (
    OperatorProcess,
    RedisServer,
    free_port,
    http_ok,
    operator_stack,
    service_account_kubeconfig,
    wait_for,
)
from driftwatch.scans.reservoir_read import read_window
from driftwatch.scans.windows import Window
from driftwatch.vocab import reservoir_format as fmt
from driftwatch.vocab.rediskeys import MonitorKeys

DAY = 86400.0


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, RedisServer]]:
    with operator_stack(cluster, tmp_path_factory.mktemp("scan-operator")) as (op, redis_server):
        yield op, redis_server


def get(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    out = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return (get(cluster, "driftmonitor", namespace, name) or {}).get("status") or {}


def monitor(name: str, **scan: Any) -> dict[str, Any]:
    return {
        "apiVersion": "driftwatch.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "features": [{"name": "latency_ms", "type": "numeric"}, {"name": "plan", "type": "categorical"}],
            "baseline": {"minSamples": 100, "window": 500, "adopt": {"after": "never"}},
            "scan": {
                "schedule": "* * * * *",
                "current": "1h",
                "reference": "7d",
                # 256 per bucket: at 64 the pooled ~470 `plan` values of a 50/50 mix crossed the
                # Jensen-Shannon floor about once in 40 runs (a test that could fail by chance)
                "reservoir": {"size": 256, "bucket": "5m"},
                **scan,
            },
        },
    }


class Sidecar:
    """``driftwatch sidecar`` with the monitor's rendered ConfigMap (on free ports), as pod ``pod``."""

    def __init__(self, cluster: Cluster, ns: str, name: str, pod: str, workdir: Path) -> None:
        cm = get(cluster, "configmap", ns, f"driftwatch-{name}")
        assert cm is not None
        config = yaml.safe_load(cm["data"]["sidecar.yaml"])
        assert config["spec"]["scan"]["reference"] == "7d"
        self.port, metrics = free_port(), free_port()
        config["listen"].update({"port": self.port, "metricsPort": metrics})
        config["state"]["publishInterval"] = 0.5
        path = workdir / f"{pod}.yaml"
        path.write_text(yaml.safe_dump(config))
        self.log = workdir / f"{pod}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "driftwatch", "sidecar", "--config", str(path)],
            env={"POD_NAME": pod, "PATH": "/usr/bin:/bin"},
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: http_ok(f"http://127.0.0.1:{metrics}/healthz"), 30, "sidecar health")

    def feed(self, t0: float, t1: float, n: int, mean: float, plans: tuple[str, ...], seed: int) -> None:
        rng = random.Random(seed)
        samples: list[dict[str, Any]] = []
        for i in range(n):
            ts = t0 + (t1 - t0) * i / n
            samples.append({"feature": "latency_ms", "value": rng.gauss(mean, 10.0), "ts": ts})
            samples.append({"feature": "plan", "value": rng.choice(plans), "ts": ts})
        for i in range(0, len(samples), 4000):
            body = json.dumps({"samples": samples[i : i + 4000]}).encode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/v1/samples", body, {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == 202

    def stop(self) -> None:
        self.proc.terminate()
        assert self.proc.wait(30) == 0, self.log.read_text()[-3000:]


def run_job(cluster: Cluster, job: dict[str, Any], kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    """The Job's container command, as a process: its environment, its ServiceAccount's token."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container.get("env") or []}
    env.update({"KUBECONFIG": str(kubeconfig), "PATH": os.environ["PATH"]})
    cmd = container["command"]
    assert cmd[:2] == ["driftwatch", "scan"]
    return subprocess.run(
        [sys.executable, "-m", "driftwatch", *cmd[1:]], env=env, capture_output=True, text=True, timeout=120
    )


def history(op: OperatorProcess, ns: str, name: str, query: str = "") -> dict[str, Any]:
    with urllib.request.urlopen(f"{op.gate_url}/v1/history/{ns}/{name}{query}", timeout=10) as r:
        doc: dict[str, Any] = json.loads(r.read())
    return doc


def test_cronjob_job_scan_status_history(
    cluster: Cluster, stack: tuple[OperatorProcess, RedisServer], namespace: str, tmp_path: Path
) -> None:
    op, redis_server = stack
    ns, name = namespace, "checkout"
    cluster.apply(monitor(name), namespace=ns)
    scan_name = f"driftwatch-{name}-scan"

    # the operator renders the CronJob and the identity its Jobs run as, all owned by the monitor
    cron = wait_for(lambda: get(cluster, "cronjob", ns, scan_name), 30, "the scan CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["schedule"] == "* * * * *"
    job_spec = cron["spec"]["jobTemplate"]["spec"]
    assert job_spec["activeDeadlineSeconds"] == 600
    assert job_spec["template"]["spec"]["serviceAccountName"] == scan_name
    for kind in ("serviceaccount", "role", "rolebinding", "cronjob"):
        child = get(cluster, kind, ns, scan_name)
        assert child is not None, kind
        assert child["metadata"]["ownerReferences"][0]["kind"] == "DriftMonitor"
    sa = f"system:serviceaccount:{ns}:{scan_name}"

    def can(*args: str) -> str:
        return cluster.kubectl("auth", "can-i", *args, "-n", ns, f"--as={sa}", check=False).stdout.strip()

    assert can("get", f"driftmonitors.driftwatch.io/{name}") == "yes"
    assert can("patch", f"driftmonitors.driftwatch.io/{name}", "--subresource=status") == "yes"
    assert can("get", "driftmonitors.driftwatch.io/other") == "no"
    assert can("patch", f"driftmonitors.driftwatch.io/{name}") == "no"
    assert can("get", "secrets") == "no"
    assert can("create", "events") == "no"

    # real sidecars fill Redis: two pods, last week and this week's stable traffic
    now = fmt.bucket_start(time.time(), 300) + 150.0  # windows of whole buckets: [B - 1h, B)
    pods = [Sidecar(cluster, ns, name, f"{name}-{i}", tmp_path) for i in range(2)]
    try:
        _scan_twice(cluster, op, redis_server.url, ns, name, scan_name, pods, now, tmp_path)
    finally:
        for sc in pods:
            if sc.proc.poll() is None:
                sc.proc.kill()


def _stored_seen(url: str, ns: str, name: str, t0: float, t1: float) -> int:
    """Values seen by the reservoirs Redis holds for [t0, t1), every pod and stream: what a scan reads."""
    import redis.asyncio as aioredis

    async def go() -> int:
        client = aioredis.Redis.from_url(url)
        try:
            read = await read_window(client, MonitorKeys.of("driftwatch", ns, name), Window(t0, t1), 300)
            return sum(part.seen for part in read.parts)
        finally:
            await client.aclose()

    return asyncio.run(go())


def _scan_twice(
    cluster: Cluster,
    op: OperatorProcess,
    redis_url: str,
    ns: str,
    name: str,
    scan_name: str,
    pods: list[Sidecar],
    now: float,
    tmp_path: Path,
) -> None:
    cur0, ref0 = now - 150 - 3600, now - 150 - 3600 - 7 * DAY
    for i, sc in enumerate(pods):
        sc.feed(ref0, ref0 + 3600, 2000, 100.0, ("free", "pro"), i)
    # last week's buckets in Redis before this week's follow: a pod holds at most MAX_BUCKETS unwritten
    # (the oldest go), so fed back to back the reference could lose buckets to a slow flush, and the
    # comparison -- of every value: 167 a bucket, fewer than a reservoir holds -- would be a draw
    wait_for(
        lambda: _stored_seen(redis_url, ns, name, ref0, ref0 + 3600) == 2 * 2000 * 2,
        30,
        "last week's reservoirs written",
    )
    for i, sc in enumerate(pods):
        sc.feed(cur0, cur0 + 3000, 1600, 100.0, ("free", "pro"), 10 + i)

    # the controller-manager's CronJob controller creates a Job on schedule
    def a_job() -> dict[str, Any] | None:
        jobs = cluster.kubectl_json("get", "jobs", "-n", ns)["items"]
        return next((j for j in jobs if j["metadata"]["ownerReferences"][0]["name"] == scan_name), None)

    job = wait_for(a_job, 100, "a Job from the scan CronJob")
    kubeconfig = service_account_kubeconfig(
        cluster, tmp_path / "scan.kubeconfig", "1h", account=scan_name, namespace=ns
    )
    time.sleep(1.5)  # the sidecars' next flush
    stable = run_job(cluster, job, kubeconfig)
    assert stable.returncode == 0, stable.stderr
    last = status(cluster, ns, name)["lastScan"]
    assert last["result"] == "NoDrift", last
    assert {f["feature"] for f in last["features"]} == {"latency_ms", "plan"}
    assert last["pods"] == {"reference": 2, "current": 2}
    assert last["reference"]["kind"] == "offset"

    # the last ten minutes drift (latency +3 sd on one pod): flagged
    pods[0].feed(cur0 + 3000, cur0 + 3600, 1200, 130.0, ("free", "pro"), 20)
    for sc in pods:
        sc.stop()  # the final flush
    drifted = run_job(cluster, job, kubeconfig)
    assert drifted.returncode == 0, drifted.stderr  # --job: a drift is a result, not a failed Job
    st = status(cluster, ns, name)
    last = st["lastScan"]
    assert last["result"] == "Drift", last
    assert [f["feature"] for f in last["features"] if f["drifted"]] == ["latency_ms"]
    assert [s["result"] for s in st["scans"]] == ["Drift", "NoDrift"]

    # the same command outside --job says drift in its exit code
    env_job = json.loads(json.dumps(job))
    env_job["spec"]["template"]["spec"]["containers"][0]["command"].remove("--job")
    assert run_job(cluster, env_job, kubeconfig).returncode == 1

    # the operator: an Event per scan, the metrics
    def reasons() -> set[str] | None:
        items = cluster.kubectl_json(
            "get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}"
        )["items"]
        got = {e["reason"] for e in items}
        return got if {"ScanNoDrift", "ScanDrift"} <= got else None

    wait_for(reasons, 30, "the scans' Events")
    with urllib.request.urlopen(f"{op.gate_url}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert 'driftwatch_scans_total{result="Drift"}' in metrics
    assert f'driftwatch_scan_drifted_features{{monitor="{name}",namespace="{ns}"}} 1.0' in metrics

    # the history endpoint returns both scans, newest first, and filters them
    page = history(op, ns, name, "?type=SCAN")
    assert [e["details"]["result"] for e in page["entries"]] == ["Drift", "Drift", "NoDrift"]
    assert len(history(op, ns, name, "?type=SCAN&severity=warning")["entries"]) == 2
    assert history(op, ns, name, "?type=SCAN&limit=1")["next"] is not None
    with pytest.raises(urllib.error.HTTPError) as bad:
        history(op, ns, name, "?severity=loud")
    assert bad.value.code == 400
    assert json.loads(bad.value.read())["parameter"] == "severity"

    # spec.scan removed: the CronJob and its identity go
    cluster.kubectl(
        "patch",
        "driftmonitor",
        name,
        "-n",
        ns,
        "--type=json",
        "-p",
        '[{"op": "remove", "path": "/spec/scan"}]',
    )
    wait_for(lambda: get(cluster, "cronjob", ns, scan_name) is None, 30, "the CronJob removed")
    for kind in ("serviceaccount", "role", "rolebinding"):
        assert get(cluster, kind, ns, scan_name) is None, kind

"""Operator benchmark: DriftWatch's operator against an empty kopf operator on the same objects.

    .venv/bin/python bench/operator.py [--small] [--monitors 500] [--namespaces 50] [--cycles 10]

On a fresh local control plane (etcd + kube-apiserver + controller-manager), with the operator running
as its ServiceAccount (so RBAC is in the path, as in a cluster) and a real redis-server:

* **reconcile**: N DriftMonitors across M namespaces applied at once; seconds until every one is
  Ready (condition) and all 2N children (ConfigMap + Service) exist. Side by side: an empty kopf
  operator (one no-op ``on.create`` handler, same kopf settings, same credentials) handling the same N
  objects -- seconds until kopf has stored its handled-state annotation on all of them. The ratio says
  what DriftWatch's work costs on top of kopf's own.
* **detection -> status**: a sidecar's summary saying Drifting (a real engine summary, published to
  Redis exactly as the sidecar does after a drift event: summary, then ``PUBLISH P:notify``) until
  ``status.phase`` is Drifting, with the N monitors loaded. With the operator's notification listener
  this is one aggregation round plus a status write; without it (``driftwatch operator --no-notify``,
  or a lost notification) it is bounded by the aggregation interval. Median and max over several flips.
* **memory**: the operator's RSS at start, after N monitors, and after C create/delete cycles (of all N
  monitors each, ``--cycle-size`` for fewer), to show it returns to a plateau, not a leak. The empty
  operator's RSS is shown too.

``--small`` is a quick run (50 monitors, 10 namespaces, 3 cycles) for CI and laptops.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import redis
import yaml

from driftwatch.detect import Engine
from driftwatch.devcluster import LocalCluster, stack
from driftwatch.vocab.rediskeys import MonitorKeys
from driftwatch.vocab.spec import MonitorSpec

EMPTY_OPERATOR = """
import kopf

@kopf.on.startup()
def configure(settings, **_):
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="bench.driftwatch.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="bench.driftwatch.io")
    settings.scanning.disabled = True

@kopf.on.create("driftwatch.io", "v1alpha1", "driftmonitors")
def noop(**_):
    pass
"""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def manifests(count: int, namespaces: int, prefix: str = "m") -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "driftwatch.io/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": f"{prefix}{i:04d}", "namespace": f"bench-{i % namespaces:02d}"},
            "spec": {
                "selector": {"matchLabels": {"app": f"app{i}"}},
                "features": [{"name": "latency_ms", "type": "numeric"}],
            },
        }
        for i in range(count)
    ]


def wait(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> float:
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f}s: {what}")
        time.sleep(interval)
    return time.monotonic() - t0


def count_lines(cluster: LocalCluster, *args: str) -> int:
    out = cluster.kubectl(*args, timeout=120).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def ready_count(cluster: LocalCluster) -> int:
    path = '{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'
    out = cluster.kubectl("get", "driftmonitors", "-A", "-o", f"jsonpath={path}", timeout=120).stdout
    return sum(1 for line in out.splitlines() if line.strip() == "True")


def handled_count(cluster: LocalCluster) -> int:
    key = "bench\\.driftwatch\\.io/last-handled-configuration"
    path = "{range .items[*]}{.metadata.annotations." + key + "}{'\\n'}{end}"
    out = cluster.kubectl("get", "driftmonitors", "-A", "-o", f"jsonpath={path}", timeout=120).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def children_count(cluster: LocalCluster) -> int:
    sel = "app.kubernetes.io/managed-by=driftwatch-operator"
    return count_lines(cluster, "get", "configmaps,services", "-A", "-l", sel, "--no-headers")


def apply_all(cluster: LocalCluster, docs: list[dict[str, Any]]) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs), timeout=600)


def delete_all(cluster: LocalCluster, timeout: float = 600) -> float:
    t0 = time.monotonic()
    cluster.kubectl("delete", "driftmonitors", "-A", "--all", "--wait=false", timeout=300)
    wait(
        lambda: count_lines(cluster, "get", "driftmonitors", "-A", "--no-headers") == 0,
        timeout,
        "DriftMonitors deleted",
    )
    return time.monotonic() - t0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_empty_operator(
    cluster: LocalCluster, kubeconfig: Path, workdir: Path, docs: list[dict[str, Any]]
) -> tuple[float, float]:
    """(seconds until the empty kopf operator handled every object, its RSS in MiB then)."""
    script = workdir / "empty_operator.py"
    script.write_text(EMPTY_OPERATOR)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    logf = (workdir / "empty-operator.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces", str(script)],
        env=env,
        stdout=logf,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(3)  # let it list (nothing) and start watching
        t0 = time.monotonic()
        apply_all(cluster, docs)
        wait(lambda: handled_count(cluster) >= len(docs), 900, "empty operator handled all")
        took = time.monotonic() - t0
        return took, rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
        logf.close()


def engine_summary(shift: float) -> dict[str, Any]:
    spec = MonitorSpec.parse({"features": [{"name": "latency_ms", "type": "numeric"}]})
    engine = Engine(spec, name="latency-probe")
    rng = np.random.default_rng(7)
    engine.update("latency_ms", rng.normal(100, 10, 1000))
    engine.update("latency_ms", rng.normal(100 + shift, 10, 600))
    summary: dict[str, Any] = engine.summary()
    return summary


def phase_of(cluster: LocalCluster, ns: str, name: str) -> str:
    return cluster.kubectl("get", "driftmonitor", name, "-n", ns, "-o", "jsonpath={.status.phase}").stdout


def detection_latency(cluster: LocalCluster, redis_url: str, flips: int) -> list[float]:
    """Publish a Drifting (then a Stable) summary as the sidecar would; time until status follows."""
    ns, name = "bench-00", "latency-probe"
    apply_all(
        cluster,
        [
            {
                "apiVersion": "driftwatch.io/v1alpha1",
                "kind": "DriftMonitor",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "selector": {"matchLabels": {"app": "probe"}},
                    "features": [{"name": "latency_ms", "type": "numeric"}],
                },
            }
        ],
    )
    r = redis.Redis.from_url(redis_url)
    prefix = MonitorKeys.of("driftwatch", ns, name).prefix
    calm, drifting = engine_summary(0.0), engine_summary(40.0)
    assert any(s["state"] == "Drifting" for s in drifting["streams"]), "the engine did not flag the probe"

    def publish(summary: dict[str, Any], notify: bool = False) -> None:
        now = time.time()
        with r.pipeline(transaction=True) as p:
            p.set(f"{prefix}:summary:probe-0", json.dumps({**summary, "pod": "probe-0", "time": now}), ex=120)
            p.zadd(f"{prefix}:pods", {"probe-0": now})
            if notify:  # what a sidecar does right after a DRIFT_START/DRIFT_END event
                p.publish(f"{prefix}:notify", "probe-0")
            p.execute()

    def until(phase: str, summary: dict[str, Any]) -> float:
        """Publish ``summary`` with a notification (the sidecar's push after a drift event), then
        again every 0.2s (keeping its pod fresh) until ``phase``."""
        t0 = time.monotonic()
        publish(summary, notify=True)
        while phase_of(cluster, ns, name) != phase:
            time.sleep(0.2)
            publish(summary)
            if time.monotonic() - t0 > 120:
                raise TimeoutError(f"probe never {phase}")
        return time.monotonic() - t0

    out = []
    for i in range(flips):
        until("Stable", calm)
        out.append(until("Drifting", drifting))
        log(f"detection -> status flip {i + 1}/{flips}: {out[-1]:.2f}s")
    r.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--small", action="store_true", help="50 monitors, 10 namespaces, 3 cycles")
    p.add_argument("--monitors", type=int, default=500)
    p.add_argument("--namespaces", type=int, default=50)
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--cycle-size", type=int, default=0, help="monitors per create/delete cycle (0: all)")
    p.add_argument("--aggregate-interval", type=float, default=10.0, help="operator --aggregate-interval")
    p.add_argument("--flips", type=int, default=5)
    args = p.parse_args(argv)
    if args.small:
        args.monitors, args.namespaces, args.cycles, args.flips = 50, 10, 3, 3
    n, m = args.monitors, args.namespaces
    cycle_n = args.cycle_size or n  # the target: RSS flat across cycles of all N
    rows: list[tuple[str, str]] = []
    workdir = Path(tempfile.mkdtemp(prefix="driftwatch-bench-"))
    with LocalCluster(progress=lambda line: log(line)) as cluster:
        stack.install_crd(cluster)
        stack.install_rbac(cluster)
        for i in range(m):
            cluster.kubectl("create", "namespace", f"bench-{i:02d}")
        kubeconfig = stack.service_account_kubeconfig(cluster, workdir / "operator.kubeconfig")
        docs = manifests(n, m)

        log(f"empty kopf operator: {n} DriftMonitors in {m} namespaces")
        empty_s, empty_rss = run_empty_operator(cluster, kubeconfig, workdir, docs)
        delete_all(cluster)

        with stack.RedisServer() as rds:
            op = stack.OperatorProcess(
                kubeconfig,
                rds.url,
                log_path=workdir / "operator.log",
                aggregate_interval=args.aggregate_interval,
                publish_interval=2.0,
            )
            op.start()
            try:
                assert op.proc is not None
                pid = op.proc.pid
                rss_start = rss_mib(pid)
                log(f"driftwatch operator: {n} DriftMonitors in {m} namespaces")
                t0 = time.monotonic()
                apply_all(cluster, docs)
                wait(
                    lambda: ready_count(cluster) >= n and children_count(cluster) >= 2 * n,
                    1800,
                    "all Ready with children",
                )
                ours_s = time.monotonic() - t0
                rss_loaded = rss_mib(pid)
                log(f"all {n} Ready with {2 * n} children in {ours_s:.1f}s")

                lat = detection_latency(cluster, rds.url, args.flips)
                log("deleting (finalizer: Redis cleanup)")
                del_s = delete_all(cluster)

                rss_cycles = []
                for c in range(args.cycles):
                    apply_all(cluster, manifests(cycle_n, m, prefix=f"c{c}-"))
                    wait(lambda: ready_count(cluster) >= cycle_n, 900, f"cycle {c} Ready")
                    delete_all(cluster)
                    rss_cycles.append(rss_mib(pid))
                    log(f"cycle {c + 1}/{args.cycles}: RSS {rss_cycles[-1]:.1f} MiB")
            finally:
                op.stop()

    shutil.rmtree(workdir, ignore_errors=True)  # kept only if the run failed (logs for a post-mortem)
    rows += [
        (
            f"{n} DriftMonitors / {m} namespaces -> all Ready, {2 * n} children (DriftWatch)",
            f"{ours_s:.1f} s",
        ),
        (f"same {n} objects, empty kopf operator (no-op on.create)", f"{empty_s:.1f} s"),
        ("DriftWatch / empty kopf", f"{ours_s / empty_s:.2f}x"),
        (f"delete {n} (finalizer: Redis SCAN+UNLINK) -> all gone", f"{del_s:.1f} s"),
        (
            (
                f"detection -> status.phase Drifting (aggregate interval {args.aggregate_interval:g}s), "
                f"median / max of {len(lat)}"
            ),
            f"{statistics.median(lat):.2f} s / {max(lat):.2f} s",
        ),
        ("operator RSS at start", f"{rss_start:.1f} MiB"),
        (f"operator RSS with {n} monitors", f"{rss_loaded:.1f} MiB"),
        (
            f"operator RSS after cycle 1 / {args.cycles} (create+delete {cycle_n} each)",
            f"{rss_cycles[0]:.1f} / {rss_cycles[-1]:.1f} MiB",
        ),
        (f"empty kopf operator RSS with {n} objects", f"{empty_rss:.1f} MiB"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n| {'operator benchmark'.ljust(width)} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for k, v in rows:
        print(f"| {k.ljust(width)} | {v} |")
    print(
        f"\n(local control plane, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        f"`python bench/operator.py{' --small' if args.small else ''}`)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

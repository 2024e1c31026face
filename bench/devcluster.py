"""What running Pods and Argo Rollouts cost the local control plane, side by side in one run.

    .venv/bin/python bench/devcluster.py [--rounds 3]

Three configurations of :class:`driftwatch.devcluster.LocalCluster`, started and stopped in turn
(interleaved, ``--rounds`` times each, so a change of load on the shared box hits all three alike):

* ``no Pods``: ``run_pods=False``, the control plane as it was before kube-scheduler and kwok;
* ``Pods run``: the default, + kube-scheduler, kwok and its fake Node;
* ``+ Argo Rollouts``: ``argo_rollouts=True``, + the Argo Rollouts CRDs and controller.

Rows: each start-up phase as ``LocalCluster.timings`` records it, the whole ``start()``, how long a
2-replica Deployment takes to report both replicas available (``n/a`` without Pods: they never run)
and ``stop()``. Cells are the median over the rounds, with the range. Progress goes to stderr; the
table is the only thing on stdout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from typing import Any

from driftwatch.devcluster import LocalCluster

CONFIGS: dict[str, dict[str, Any]] = {
    "no Pods": {"run_pods": False},
    "Pods run": {},
    "+ Argo Rollouts": {"argo_rollouts": True},
}
PHASES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "argo-rollouts CRDs",
    "argo-rollouts",
    "total",
)
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "bench"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "bench"}},
        "template": {
            "metadata": {"labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
        },
    },
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def one_round(options: dict[str, Any]) -> dict[str, float]:
    """Start a cluster with ``options``, time a Deployment becoming available, stop it."""
    cluster = LocalCluster(progress=lambda line: None, **options)
    with cluster:
        out = dict(cluster.timings)
        if cluster.run_pods:
            t = time.monotonic()
            cluster.apply(DEPLOYMENT, namespace="default")
            cluster.wait_until(
                lambda: (
                    cluster.kubectl(
                        "get", "deployment", "bench", "-o", "jsonpath={.status.availableReplicas}"
                    ).stdout
                    == "2"
                ),
                timeout=120,
                what="the Deployment available",
                interval=0.1,
            )
            out["Deployment available"] = time.monotonic() - t
        t = time.monotonic()
    out["stop()"] = time.monotonic() - t
    return out


def cell(values: list[float]) -> str:
    if not values:
        return "n/a"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.1f} s"
    return f"{median:.1f} s ({min(values):.1f}-{max(values):.1f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="starts of each configuration (default 3)")
    args = p.parse_args(argv)
    results: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in CONFIGS}
    for r in range(1, args.rounds + 1):
        for name, options in CONFIGS.items():
            timings = one_round(options)
            log(f"round {r}/{args.rounds} {name}: start {timings['total']:.1f}s")
            for key, value in timings.items():
                results[name][key].append(value)

    rows = [*PHASES, "Deployment available", "stop()"]
    labels = {"total": "start() total", "Deployment available": "2-replica Deployment available"}
    width = max(len(labels.get(r, r)) for r in rows)
    cols = {name: max(len(name), 22) for name in CONFIGS}
    print(f"| {'phase'.ljust(width)} | " + " | ".join(n.ljust(cols[n]) for n in CONFIGS) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * (cols[n] + 2) for n in CONFIGS) + "|")
    for row in rows:
        cells = [cell(results[n].get(row, [])).ljust(cols[n]) for n in CONFIGS]
        print(f"| {labels.get(row, row).ljust(width)} | " + " | ".join(cells) + " |")
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"\n{args.rounds} rounds per configuration, interleaved; median (min-max); load average {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

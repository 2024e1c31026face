"""``driftwatch status [-n NAMESPACE] [NAME]``: DriftMonitors and their features, as a table or JSON.

``kubectl get dm`` shows one line per monitor; this shows every feature with its state, score,
severity and detector -- what an on-call engineer reads first.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from driftwatch.kube import client, credentials
from driftwatch.vocab.names import KIND


def rows(monitors: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for m in monitors:
        meta, status = m.get("metadata", {}), m.get("status") or {}
        base = [meta.get("namespace", ""), meta.get("name", ""), status.get("phase", "-")]
        features = status.get("features") or [{}]
        for f in features:
            score = f.get("score")
            out.append(
                [
                    *base,
                    f.get("name", "-"),
                    f.get("key") or "-",
                    f.get("state", "-"),
                    f"{score:.2f}" if isinstance(score, int | float) else "-",
                    f.get("severity", "-"),
                    f.get("detector") or "-",
                    status.get("verdict", "-"),
                ]
            )
    return out


def table(data: list[list[str]]) -> str:
    header = [
        "NAMESPACE",
        "NAME",
        "PHASE",
        "FEATURE",
        "KEY",
        "STATE",
        "SCORE",
        "SEVERITY",
        "DETECTOR",
        "VERDICT",
    ]
    widths = [max(len(str(r[i])) for r in [header, *data]) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *data]
    )


async def read_monitors(kube: client.Kube, namespace: str | None, name: str | None) -> list[dict[str, Any]]:
    """One named monitor (LookupError if it does not exist), or every monitor of a namespace / all."""
    if name:
        obj = await kube.get(KIND, namespace or "default", name)
        if obj is None:
            raise LookupError(f"DriftMonitor {namespace or 'default'}/{name} not found")
        return [obj]
    return await kube.list(KIND, namespace)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="driftwatch status", description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?")
    p.add_argument("-n", "--namespace", default=None)
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    namespace = None if args.all_namespaces else (args.namespace or "default")
    try:
        creds = credentials.load(args.kubeconfig)
        monitors = client.run(creds, lambda kube: read_monitors(kube, namespace, args.name))
    except Exception as exc:
        print(f"driftwatch status: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps([{"metadata": m.get("metadata", {}), "status": m.get("status")} for m in monitors]))
    elif not monitors:
        print(f"No DriftMonitors in {'any namespace' if namespace is None else namespace}.")
    else:
        print(table(rows(monitors)))
    return 0

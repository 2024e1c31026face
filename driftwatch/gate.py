"""``driftwatch gate NAMESPACE/NAME``: a DriftMonitor's rollout verdict as an exit code.

For Argo Rollouts' ``job`` metric provider (a Job that exits 0 passes) and for CI pipelines. Exit codes:
0 Pass, 1 Fail, 2 Inconclusive (including "no verdict yet" and a stale status), 3 the monitor could not
be read. ``--wait`` polls until the verdict is decisive or the timeout passes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from driftwatch.kubeapi import custom_objects, get_monitor
from driftwatch.verdict import VERDICTS, verdict_of_status

EXIT = dict(zip(VERDICTS, (0, 1, 2), strict=True))  # Pass, Fail, Inconclusive


def verdict_of(obj: dict) -> tuple[str, float | None]:
    """(verdict, score) from a DriftMonitor; Inconclusive when the status is not current.

    The verdict is :func:`driftwatch.verdict.verdict_of_status`'s, as for the operator's ``/v1/gate``,
    minus the age check: the CLI has no ``--max-age`` and trusts the generation check alone.
    """
    status = obj.get("status") or {}
    verdict, _ = verdict_of_status(status, (obj.get("metadata") or {}).get("generation"))
    score = status.get("score")
    return verdict, float(score) if isinstance(score, int | float) else None


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="driftwatch gate", description=__doc__.splitlines()[0])
    p.add_argument("monitor", help="NAMESPACE/NAME of the DriftMonitor")
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for Pass or Fail")
    p.add_argument("--interval", type=float, default=2.0)
    args = p.parse_args(argv)
    if args.monitor.count("/") != 1:
        p.error("monitor must be NAMESPACE/NAME")
    namespace, name = args.monitor.split("/")
    deadline = time.monotonic() + args.wait
    try:
        api = custom_objects(args.kubeconfig)
        while True:
            verdict, score = verdict_of(get_monitor(api, namespace, name))
            if verdict != "Inconclusive" or time.monotonic() >= deadline:
                break
            time.sleep(args.interval)
    except Exception as exc:  # the API's own message is the useful part
        print(f"driftwatch gate: cannot read DriftMonitor {args.monitor}: {exc}", file=sys.stderr)
        return 3
    print(json.dumps({"monitor": args.monitor, "verdict": verdict, "score": score}))
    return EXIT[verdict]

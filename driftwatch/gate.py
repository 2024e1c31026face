"""``driftwatch gate NAMESPACE/NAME``: a DriftMonitor's rollout verdict as an exit code.

For Argo Rollouts' ``job`` metric provider (a Job whose Pod exits 0 passes, anything else fails) and
for CI pipelines. The verdict is ``status.verdict`` (``driftwatch.verdict.verdict_of_status``, as the
operator's HTTP gate answers it): whatever ``spec.gate`` compares, and ``Pass`` under shadow mode.
``--wait`` polls until the verdict is decisive or the time is up. ``--canary HASH`` (the new revision's
pod template hash) makes a canary-vs-stable verdict about other canary pods Inconclusive -- right after a
new revision starts, the status still holds the previous canary's verdict until the operator groups the
new pods -- so a Job for one revision never exits 0 on another's Pass.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from driftwatch import cliopts
from driftwatch.kube import client
from driftwatch.verdict import canary_hash, verdict_of_status
from driftwatch.vocab.names import KIND
from driftwatch.vocab.spec import ConfigError, parse_duration
from driftwatch.vocab.states import Verdict

EXIT = {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.INCONCLUSIVE: 2}
#: the DriftMonitor could not be read (not found, no access, no API server)
EXIT_UNREADABLE = 3
EXIT_CODES = """\
exit codes:
  0  Pass
  1  Fail
  2  Inconclusive: no verdict yet, too few samples, a stale status, or --wait ran out
  3  the DriftMonitor could not be read (not found, forbidden, API server unreachable)
"""


def verdict_of_monitor(obj: dict[str, Any], canary: str | None = None) -> tuple[Verdict, float | None, str]:
    """(verdict, score, why) from a DriftMonitor; Inconclusive when the status is not current, or (with
    ``canary``) is a canary-vs-stable verdict about other canary pods.

    The verdict is :func:`driftwatch.verdict.verdict_of_status`'s, as for the operator's ``/v1/gate``,
    minus the age check: the CLI has no ``--max-age`` and trusts the generation check alone. ``why`` is
    ``status.gate.message`` (or the downgrade's reason).
    """
    status = obj.get("status") or {}
    verdict, reason = verdict_of_status(status, (obj.get("metadata") or {}).get("generation"), canary=canary)
    score = status.get("score")
    why = reason or str((status.get("gate") or {}).get("message") or "")
    return verdict, float(score) if isinstance(score, int | float) else None, why


async def poll(
    kube: client.Kube, namespace: str, name: str, wait: float, interval: float, canary: str | None = None
) -> tuple[Verdict, float | None, str]:
    """Read the verdict until it is decisive or ``wait`` seconds have passed."""
    deadline = time.monotonic() + wait
    while True:
        obj = await kube.get(KIND, namespace, name)
        if obj is None:
            raise LookupError("not found")
        verdict, score, why = verdict_of_monitor(obj, canary)
        if verdict != Verdict.INCONCLUSIVE or time.monotonic() >= deadline:
            return verdict, score, why
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def seconds(text: str) -> float:
    """``--wait``: seconds (``90``) or a duration (``10m``, ``1h``)."""
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else float(parse_duration(text, "--wait"))
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def template_hash(text: str) -> str:
    """``--canary``: a pod template hash (a label value)."""
    try:
        return canary_hash(text, "--canary")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="driftwatch gate",
        description="A DriftMonitor's rollout verdict as an exit code (Argo Rollouts' job provider, CI).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("monitor", help="the DriftMonitor: NAME (in the namespace of -n) or NAMESPACE/NAME")
    p.add_argument(
        "--wait",
        type=seconds,
        default=0.0,
        help="wait up to this long for Pass or Fail: seconds or a duration (30s, 10m, 1h); default 0",
    )
    p.add_argument("--interval", type=seconds, default=2.0, help="seconds between reads while waiting")
    p.add_argument(
        "--canary",
        type=template_hash,
        default=None,
        metavar="HASH",
        help="the canary's pod template hash (Argo: podTemplateHashValue Latest): a canary-vs-stable "
        "verdict about other canary pods is Inconclusive (compare: baseline verdicts are not scoped)",
    )
    cliopts.add_kube_options(p)
    args = p.parse_args(argv)
    try:
        target = cliopts.resolve(args)
        namespace, name = cliopts.monitor_ref(args.monitor, target.namespace, args.namespace)
        verdict, score, why = client.run(
            target.creds, lambda kube: poll(kube, namespace, name, args.wait, args.interval, args.canary)
        )
    except cliopts.UsageError as e:
        p.error(str(e))
    except Exception as exc:  # the API's own message is the useful part
        print(f"driftwatch gate: cannot read DriftMonitor {args.monitor}: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    out: dict[str, Any] = {"monitor": f"{namespace}/{name}", "verdict": verdict, "score": score}
    if args.canary is not None:
        out["canary"] = args.canary
    if why:
        out["message"] = why
    print(json.dumps(out))
    return EXIT[verdict]

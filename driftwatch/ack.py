"""``driftwatch ack NAMESPACE/NAME [--feature F] [--adopt]``: acknowledge a monitor's drift.

Writes the request on the DriftMonitor (annotation ``driftwatch.io/ack``, so a user who may edit the
monitor may acknowledge it; status stays the operator's), and the operator acts on it:

* the acknowledgement is recorded in ``status.acknowledged`` and the monitor's history, and repeats of
  what was alerted (a scan finding the same drift again) are silenced until the feature's -- or with
  no ``--feature``, the monitor's -- next transition;
* ``--adopt`` also makes the current regime the baseline: the operator tells every sidecar of the
  monitor (``P:commands``) and each runs ``Engine.adopt``; the drift then ends with reason ``adopted``.

Exit codes: 0 recorded (``--wait``: and seen by the operator), 3 the monitor could not be written.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
import uuid
from typing import Any

from driftwatch import cliopts
from driftwatch.kube import client
from driftwatch.kube.client import path_for
from driftwatch.vocab.names import ANNOTATION_ACK, KIND

EXIT_CODES = """\
exit codes:
  0  recorded (with --wait: and seen by the operator)
  2  bad option
  3  the DriftMonitor could not be written (not found, forbidden, API server unreachable)
"""


def request(feature: str | None, adopt: bool, by: str, now: float) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex[:16], "feature": feature, "adopt": adopt, "by": by, "time": now}


async def acknowledge(
    kube: client.Kube, namespace: str, name: str, ack: dict[str, Any], wait: float
) -> dict[str, Any] | None:
    """Annotate the monitor; with ``wait``, poll until the operator recorded it (its status entry)."""
    patch = {"metadata": {"annotations": {ANNOTATION_ACK: json.dumps(ack, separators=(",", ":"))}}}
    await kube.request(
        "PATCH", path_for(KIND, namespace, name), body=patch, content_type="application/merge-patch+json"
    )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        obj = await kube.get(KIND, namespace, name)
        for entry in ((obj or {}).get("status") or {}).get("acknowledged") or []:
            if entry.get("id") == ack["id"]:
                return dict(entry)
        await asyncio.sleep(1.0)
    return None


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="driftwatch ack",
        description="Acknowledge a DriftMonitor's drift: silence repeats until the next transition; "
        "--adopt also makes the current regime the baseline.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("monitor", help="the DriftMonitor: NAME (in the namespace of -n) or NAMESPACE/NAME")
    p.add_argument("--feature", default=None, help="one feature (default: the whole monitor)")
    p.add_argument("--adopt", action="store_true", help="make the current regime the baseline")
    p.add_argument("--by", default=None, help="who acknowledges (default: the local user name)")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the operator to record it")
    cliopts.add_kube_options(p)
    args = p.parse_args(argv)
    ack = request(args.feature, args.adopt, args.by or getpass.getuser(), time.time())
    try:
        target = cliopts.resolve(args)
        namespace, name = cliopts.monitor_ref(args.monitor, target.namespace, args.namespace)
        seen = client.run(target.creds, lambda kube: acknowledge(kube, namespace, name, ack, args.wait))
    except cliopts.UsageError as e:
        p.error(str(e))
    except Exception as exc:  # the API's message names what is wrong (not found, forbidden)
        print(f"driftwatch ack: cannot write DriftMonitor {args.monitor}: {exc}", file=sys.stderr)
        return 3
    print(
        json.dumps(
            {"monitor": f"{namespace}/{name}", **ack, "recorded": seen is not None if args.wait else None}
        )
    )
    return 0

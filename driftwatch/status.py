"""driftwatch status [NAME] [-n NAMESPACE | -A] [-o table|wide|json|yaml] [--watch]: DriftMonitors and
their features.

``kubectl get dm`` shows one line per monitor; this shows every feature with its state, score and
severity -- what an on-call engineer reads first. The namespace is kubectl's (``-n``, else the
kubeconfig context's); ``--watch`` prints the table, then each change as it happens, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

from driftwatch import cliopts, statusview
from driftwatch.kube import client
from driftwatch.kube.watch import Watcher
from driftwatch.vocab.names import KIND

#: the DriftMonitors could not be read (not found, forbidden, API server unreachable)
EXIT_UNREADABLE = 3
EXIT_CODES = """\
exit codes:
  0  shown (also when there is no DriftMonitor); --watch: stopped with Ctrl-C
  2  bad option
  3  the DriftMonitors could not be read (not found, forbidden, API server unreachable)
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="driftwatch status",
        description="DriftMonitors and the state, score and severity of each feature, one row per feature.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", nargs="?", help="one DriftMonitor (default: every one in the namespace)")
    p.add_argument(
        "-o",
        "--output",
        choices=statusview.FORMATS,
        default="table",
        metavar="FORMAT",
        help="table (default); wide: also detector, pods, last update; json or yaml: the objects",
    )
    p.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="after the list, print each change as it happens, until Ctrl-C",
    )
    cliopts.add_kube_options(p, all_namespaces=True)
    return p


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Printer:
    """Prints monitors in one format; in a table, the header once and the columns kept aligned."""

    def __init__(self, output: str, all_namespaces: bool, now: Callable[[], dt.datetime] = _now) -> None:
        self.output, self.namespaces, self.now = output, all_namespaces, now
        self.wide = output == "wide"
        self.widths: list[int] | None = None

    def rows(self, monitors: list[dict[str, Any]]) -> str:
        body = statusview.rows(monitors, self.now(), wide=self.wide, namespaces=self.namespaces)
        head: list[str] = []
        if self.widths is None:
            head = statusview.header(wide=self.wide, namespaces=self.namespaces)
            self.widths = [0] * len(head)
        return statusview.table(head, body, self.widths)

    def listing(self, monitors: list[dict[str, Any]], one: bool) -> str:
        """The first print: a table, the object (one named monitor) or a ``v1 List``."""
        if self.output in ("table", "wide"):
            return self.rows(monitors)
        doc = statusview.clean(monitors[0]) if one else statusview.as_list(monitors)
        return statusview.dump(doc, self.output)

    def change(self, obj: dict[str, Any]) -> str:
        """A watch event: the monitor's rows, or the object (YAML documents separated by ``---``)."""
        if self.output in ("table", "wide"):
            return self.rows([obj])
        text = statusview.dump(statusview.clean(obj), self.output)
        return f"---\n{text}" if self.output == "yaml" else text


async def show(kube: client.Kube, args: argparse.Namespace, namespace: str | None) -> int:
    watcher = Watcher(kube, KIND, namespace, args.name)
    printer = Printer(args.output, namespace is None)
    if args.name and not args.watch:
        obj = await kube.get(KIND, namespace, args.name)
        monitors = [obj] if obj is not None else []
    else:
        monitors = await watcher.snapshot()
    if args.name and not monitors:
        raise LookupError(f"DriftMonitor {namespace}/{args.name} not found")
    if monitors or args.output not in ("table", "wide"):
        print(printer.listing(monitors, one=bool(args.name)), flush=True)
    else:
        where = "any namespace" if namespace is None else f"the {namespace} namespace"
        print(f"No DriftMonitors found in {where}.", file=sys.stderr, flush=True)
    if args.watch:
        async for _, obj in watcher.changes():
            print(printer.change(obj), flush=True)
    return 0


def main(argv: list[str]) -> int:
    p = parser()
    args = p.parse_args(argv)
    namespace: str | None
    try:
        target = cliopts.resolve(args)
        if args.name:
            namespace, args.name = cliopts.monitor_ref(args.name, target.namespace, args.namespace)
        else:
            namespace = target.namespace
    except cliopts.UsageError as e:
        p.error(str(e))
    except Exception as exc:  # the kubeconfig's problem, named by the message
        print(f"driftwatch status: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    try:
        return client.run(target.creds, lambda kube: show(kube, args, namespace))
    except KeyboardInterrupt:  # Ctrl-C ends a watch (or a slow read): not an error, as with kubectl
        return 0
    except Exception as exc:  # the API's own message is the useful part
        print(f"driftwatch status: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE

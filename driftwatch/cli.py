"""The ``driftwatch`` command (also installed as ``kubectl-driftwatch``, the kubectl plugin).

Each subcommand lives in its own module and is imported only when used, so ``driftwatch replay`` never
pays for the Kubernetes client and the sidecar never imports kopf. A subcommand module exposes
``main(argv: list[str]) -> int`` and parses its own arguments.
"""

from __future__ import annotations

import importlib
import sys

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "replay": ("driftwatch.replay", "run the detection engine offline over a CSV of history"),
    "compare": ("driftwatch.compare", "batch two-sample drift tests of two files (reference vs current)"),
    "scan": ("driftwatch.scan", "run a DriftMonitor's scan once (its CronJob's command); exit 1 on drift"),
    "sidecar": ("driftwatch.sidecar.main", "run the detector sidecar (aiohttp) beside an app"),
    "simulate": ("driftwatch.simulate", "send synthetic traffic (normal, spike, creep, ...) to a sidecar"),
    "operator": ("driftwatch.operator.command", "run the kopf operator that reconciles DriftMonitors"),
    "gate": ("driftwatch.gate", "print a DriftMonitor's rollout verdict; exit 0 on Pass"),
    "status": ("driftwatch.status", "show DriftMonitors and their features (-o wide|json|yaml, --watch)"),
    "history": ("driftwatch.history.history_cli", "a DriftMonitor's transitions, scans and alerts"),
    "ack": ("driftwatch.ack", "acknowledge a DriftMonitor's drift (--adopt: make it the baseline)"),
    "demo": ("driftwatch.demo", "a DriftMonitor on a local control plane, drift detected end to end"),
    "version": ("driftwatch.versions", "this client's version and the operator's"),
    "completion": ("driftwatch.completion", "print a bash, zsh or fish completion script"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: driftwatch COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += [
        "",
        "Commands that address DriftMonitors take kubectl's -n/--namespace (default: the kubeconfig",
        "context's namespace), --context and --kubeconfig; installed as kubectl-driftwatch, they run as",
        "kubectl driftwatch COMMAND.",
        "",
        "Run driftwatch COMMAND --help for a command's options.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    if args[0] == "--version":
        from driftwatch import __version__

        print(__version__)
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"driftwatch: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name and not (e.name or "").startswith("driftwatch."):
            raise  # a third-party package is missing: its own message says which
        print(
            f"driftwatch {name}: not part of this install (the runtime image carries only what runs in "
            "a pod); run it from a source checkout, e.g. `make demo`",
            file=sys.stderr,
        )
        return 2
    result: int = module.main(rest)
    return result

"""The kubectl habits shared by the commands that address DriftMonitors (status, gate, ack, scan, history).

``-n/--namespace`` defaults to the namespace of the kubeconfig context (``--context``, else the
current one), then the pod's namespace in a pod, then ``default`` -- as kubectl does. A monitor is
``NAME`` in that namespace, or ``NAMESPACE/NAME`` (the older form, which the Argo Rollouts templates
pass). Pure argument handling: reading the kubeconfig is :mod:`driftwatch.kube.credentials`' job.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from driftwatch.kube import credentials

KUBECONFIG_HELP = (
    "the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else the pod's service account)"
)


class UsageError(ValueError):
    """Options that contradict each other; the message names them (exit code 2, as argparse's)."""


def add_kube_options(
    parser: argparse.ArgumentParser, *, all_namespaces: bool = False, namespace: bool = True
) -> None:
    """``-n``, (``-A``), ``--context`` and ``--kubeconfig``, described the same way everywhere."""
    group = parser.add_argument_group("cluster options")
    if namespace:
        group.add_argument(
            "-n",
            "--namespace",
            default=None,
            metavar="NAMESPACE",
            help="the namespace (default: the kubeconfig context's, else the pod's, else default)",
        )
    if all_namespaces:
        group.add_argument(
            "-A",
            "--all-namespaces",
            action="store_true",
            help="every namespace (adds a NAMESPACE column); ignores -n",
        )
    group.add_argument(
        "--context",
        default=None,
        metavar="NAME",
        help="the kubeconfig context to use (default: its current-context)",
    )
    group.add_argument("--kubeconfig", default=None, metavar="FILE", help=KUBECONFIG_HELP)


def namespace_for(
    flag: str | None, context_namespace: str | None, all_namespaces: bool = False
) -> str | None:
    """The namespace a command addresses: None for every namespace (``-A``), else ``-n``, else the
    context's (or the pod's), else ``default``."""
    if all_namespaces:
        return None
    return flag or context_namespace or "default"


def monitor_ref(ref: str, namespace: str | None, explicit_namespace: str | None = None) -> tuple[str, str]:
    """(namespace, name) of ``NAME`` or ``NAMESPACE/NAME``; UsageError if malformed or if ``-n`` names
    another namespace than the reference does."""
    parts = ref.split("/")
    if len(parts) > 2 or not all(parts):
        raise UsageError(f"monitor {ref!r}: expected NAME or NAMESPACE/NAME")
    if len(parts) == 1:
        if namespace is None:
            raise UsageError(f"monitor {ref}: a DriftMonitor cannot be named across all namespaces (-A)")
        return namespace, parts[0]
    if explicit_namespace and explicit_namespace != parts[0]:
        raise UsageError(f"monitor {ref} is in namespace {parts[0]}, but -n says {explicit_namespace}")
    return parts[0], parts[1]


@dataclass(frozen=True)
class Target:
    """Credentials and the namespace they resolve to (None: all namespaces)."""

    creds: credentials.Credentials
    namespace: str | None


def resolve(args: argparse.Namespace) -> Target:
    """Read the kubeconfig (``--kubeconfig``, ``--context``) and settle the namespace from ``args``."""
    creds = credentials.load(getattr(args, "kubeconfig", None), getattr(args, "context", None))
    namespace = namespace_for(
        getattr(args, "namespace", None), creds.default_namespace, getattr(args, "all_namespaces", False)
    )
    return Target(creds, namespace)


def namespace_only(args: argparse.Namespace) -> str:
    """The namespace for a command that does not talk to the API server (``history`` asks the
    operator): ``-n``, else the kubeconfig context's (read without running an exec plugin), else
    ``default``. A missing or unreadable kubeconfig is no error here; a ``--context`` it lacks is."""
    if getattr(args, "namespace", None):
        return str(args.namespace)
    context = getattr(args, "context", None)
    try:
        return credentials.context_namespace(getattr(args, "kubeconfig", None), context) or "default"
    except credentials.CredentialsError:
        if context:
            raise
        return "default"

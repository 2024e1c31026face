"""The Flagger controller on the local control plane.

Why: DriftWatch's gate answers Flagger's webhooks; only the real controller shows that a Canary written
for it is read the way we think -- that a ``rollout`` webhook's failed checks roll a canary back, that
``confirm-promotion`` holds it until the gate says Pass, and that Flagger's primary and canary Pods are
told apart. The controller and its CRDs are built from the same module version (``FLAGGER_VERSION`` in
versions.env).

How it runs here, and what that leaves out:

* out of cluster, with a client certificate of its own (``CN=flagger``, ``O=system:masters``: its
  ClusterRole is not what is under test);
* ``-mesh-provider=kubernetes``: no service mesh or ingress runs here, so Canaries use Flagger's
  Kubernetes provider -- blue/green ``iterations``, the primary and canary Deployments side by side,
  ClusterIP Services that route nowhere (no kube-proxy);
* its HTTP server (``/healthz``, ``/metrics``) on a free port; Flagger binds it on every interface
  (``:<port>``, not configurable), nothing else listens beyond loopback;
* ``-metrics-server`` on a loopback port nobody listens on: no Prometheus for Flagger, which only logs
  it as unreachable (Canaries here use webhooks, no metric checks);
* ``-control-loop-interval=1s``: a new Canary's analysis loop starts within a second rather than ten.
  The analysis itself ticks every ``spec.analysis.interval``, at least 10 s (Flagger's floor);
* no leader election (one instance), no Slack or Teams (no URL given);
* JSON log lines: every message Flagger records as an Event on a Canary is also logged (``msg``, with
  ``canary: <name>.<namespace>``), all of them -- the Events themselves, all of reason ``Synced``, are
  merged by the event recorder after ten similar ones (:func:`canary_messages`).
"""

from __future__ import annotations

import json
from pathlib import Path

#: the CRDs of ``crd.yaml`` the controller needs Established before it starts
CRDS = ("canaries.flagger.app", "metrictemplates.flagger.app", "alertproviders.flagger.app")
#: the client certificate's common name (what the API server's audit and managedFields show)
USER = "flagger"


def controller_argv(binary: Path, *, kubeconfig: Path, port: int, metrics_server_port: int) -> list[str]:
    """Command line of the Flagger controller."""
    return [
        str(binary),
        f"-kubeconfig={kubeconfig}",
        "-mesh-provider=kubernetes",
        f"-port={port}",
        f"-metrics-server=http://127.0.0.1:{metrics_server_port}",
        "-control-loop-interval=1s",
        "-log-level=info",
        "-zap-encoding=json",
        "-enable-leader-election=false",
    ]


def canary_messages(log: Path, name: str, namespace: str) -> list[str]:
    """What the controller said about the Canary ``namespace/name``, in order, from its JSON log."""
    key = f"{name}.{namespace}"
    out = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # klog's or Go's own lines
        if isinstance(entry, dict) and entry.get("canary") == key:
            out.append(str(entry.get("msg", "")))
    return out

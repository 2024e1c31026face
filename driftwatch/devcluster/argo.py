"""The Argo Rollouts controller on the local control plane.

Why: DriftWatch's verdicts gate rollouts; only the real controller shows that an AnalysisTemplate
written for it is read the way we think, that a ``web`` metric's ``successCondition`` sees what the
gate answers, and that a failed AnalysisRun really aborts the Rollout. The controller and its CRDs
are built from the same module version (``ARGO_ROLLOUTS_VERSION`` in versions.env).

How it runs here, and what that leaves out:

* out of cluster, with a client certificate of its own (``CN=argo-rollouts-controller``,
  ``O=system:masters``: the CRD's ClusterRole is not what is under test);
* ``--leader-elect=false`` (one instance);
* its healthz and metrics servers on free ports; Argo binds them on every interface (``0.0.0.0``,
  not configurable), nothing else listens beyond loopback;
* ``POD_NAMESPACE=argo-rollouts``: where it would look for its notification ConfigMap (none exists,
  so notifications are off);
* no traffic routing (no Service mesh or ingress controller runs here, and Services have no
  endpoints): Rollouts use the basic canary, whose ``setWeight`` steps scale ReplicaSets.
"""

from __future__ import annotations

from pathlib import Path

#: the namespace the controller considers its own (see the module docstring)
CONTROLLER_NAMESPACE = "argo-rollouts"
#: what ``make k8s-bins`` copies out of the module: one file per CRD
CRDS = (
    "rollouts.argoproj.io",
    "analysistemplates.argoproj.io",
    "clusteranalysistemplates.argoproj.io",
    "analysisruns.argoproj.io",
    "experiments.argoproj.io",
)


def controller_argv(binary: Path, *, kubeconfig: Path, healthz_port: int, metrics_port: int) -> list[str]:
    """Command line of the Argo Rollouts controller."""
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        "--leader-elect=false",
        f"--healthzPort={healthz_port}",
        f"--metricsPort={metrics_port}",
        "--logformat=text",
        "--loglevel=info",
    ]

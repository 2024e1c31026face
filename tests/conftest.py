"""Test-session settings shared by every layer, and the session's control plane.

By default the ``cluster`` fixture starts a :class:`LocalCluster` (etcd + kube-apiserver +
kube-controller-manager + kube-scheduler + kwok, from ``make k8s-bins``), once per session, for
tests/e2e and tests/reliability alike; the ``argo_rollouts`` and ``flagger`` fixtures add the Argo
Rollouts or the Flagger controller to it the first time a test asks for it. With ``DW_USE_KUBECONFIG=1``
it uses the cluster ``KUBECONFIG`` points at instead (``make e2e-kind``); both offer the same interface
(:class:`driftwatch.devcluster.Cluster`).

Hypothesis: locally each run explores new random examples (that is how it found the subnormal-value
bug in the quantile sketch); under ``CI=true`` it is derandomized, so a gate run is repeatable and a
red CI always means a change, not a lucky draw. Failures found locally become explicit tests.
"""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from driftwatch.devcluster import Cluster

# Ctrl-C is under test (tests/e2e/test_lifecycle.py, `status --watch`): the processes a test starts must
# get SIGINT's default. A shell without job control that runs `make test &` hands it down *ignored*, and
# an ignored signal stays ignored across exec -- a handler does not: with one installed here, every
# child starts with the default again (and pytest itself can be interrupted).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def use_existing_cluster() -> bool:
    return os.environ.get("DW_USE_KUBECONFIG") == "1"


#: component -> seconds to start, reported in the terminal summary (CI logs show the cache is reused)
_START_TIMINGS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _START_TIMINGS:
        parts = ", ".join(f"{k} {v:.1f}s" for k, v in _START_TIMINGS.items() if k != "total")
        terminalreporter.write_line(
            f"local control plane started in {_START_TIMINGS['total']:.1f}s ({parts})"
        )


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The session's cluster. Started once; stopped (and checked to leave no process) at the end."""
    # imported here: unit tests (most of the suite) never pay for the dev cluster's imports
    from driftwatch.devcluster import ExistingCluster, LocalCluster
    from driftwatch.devcluster.processes import pid_alive

    if use_existing_cluster():
        yield ExistingCluster()
        return
    local = LocalCluster()
    with local:
        _START_TIMINGS.update(local.timings)
        yield local
    left = [pid for pid in local.pids if pid_alive(pid)]
    assert not left, f"control-plane processes survived teardown: {left}"


@pytest.fixture(scope="session")
def argo_rollouts(cluster: Cluster) -> Cluster:
    """The session's cluster with the Argo Rollouts controller and CRDs (started on first use).

    Against an existing cluster, the controller must already be installed; the test is skipped if
    its CRD is not there.
    """
    from driftwatch.devcluster import LocalCluster

    if isinstance(cluster, LocalCluster):
        cluster.enable_argo_rollouts()
        for step in ("argo-rollouts CRDs", "argo-rollouts"):
            if step in cluster.timings:
                _START_TIMINGS[step] = cluster.timings[step]
    elif cluster.kubectl("get", "crd", "rollouts.argoproj.io", check=False).returncode != 0:
        pytest.skip("Argo Rollouts is not installed in this cluster (no rollouts.argoproj.io CRD)")
    return cluster


@pytest.fixture(scope="session")
def flagger(cluster: Cluster) -> Cluster:
    """The session's cluster with the Flagger controller (``-mesh-provider=kubernetes``) and its CRDs,
    started on first use. Against an existing cluster, Flagger must already be installed (skipped if its
    Canary CRD is not there)."""
    from driftwatch.devcluster import LocalCluster

    if isinstance(cluster, LocalCluster):
        cluster.enable_flagger()
        for step in ("flagger CRDs", "flagger"):
            if step in cluster.timings:
                _START_TIMINGS[step] = cluster.timings[step]
    elif cluster.kubectl("get", "crd", "canaries.flagger.app", check=False).returncode != 0:
        pytest.skip("Flagger is not installed in this cluster (no canaries.flagger.app CRD)")
    return cluster


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test (with a random suffix), deleted afterwards.

    Tests needing labels (Pod Security levels, the injector's opt-in) relabel it with
    ``cluster.create_namespace(namespace, labels=...)``, which updates in place.
    """
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:5]}"
    cluster.create_namespace(name, labels={"driftwatch.io/e2e": "true"})
    yield name
    cluster.delete_namespace(name, wait=False)

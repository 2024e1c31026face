"""Fixtures for the end-to-end tests: one control plane per session, one namespace per test.

By default the session starts a :class:`LocalCluster` (etcd + kube-apiserver + kube-controller-manager
from ``make k8s-bins``). With ``DW_USE_KUBECONFIG=1`` it uses the cluster ``KUBECONFIG`` points at
instead (``make e2e-kind``); both offer the same interface (:class:`driftwatch.localcluster.Cluster`).
Every test collected under tests/e2e is marked ``e2e``, so ``-m "not e2e"`` skips them all.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwatch.localcluster import Cluster, ExistingCluster, LocalCluster
from driftwatch.localcluster.processes import pid_alive

_HERE = Path(__file__).parent


def use_existing_cluster() -> bool:
    return os.environ.get("DW_USE_KUBECONFIG") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # a conftest hook sees every item of the session: mark only ours
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


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
    if use_existing_cluster():
        yield ExistingCluster()
        return
    local = LocalCluster()
    with local:
        _START_TIMINGS.update(local.timings)
        yield local
    left = [pid for pid in local.pids if pid_alive(pid)]
    assert not left, f"control-plane processes survived teardown: {left}"


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

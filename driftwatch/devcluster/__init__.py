"""A local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) without Docker.

Used by the e2e tests (``tests/e2e/conftest.py``) and by ``driftwatch demo``. See
``docs/local-cluster.md`` for how it works and :mod:`driftwatch.devcluster.cluster` for the API.
Admission webhooks must be registered by ``url:`` (``https://127.0.0.1:<port>``): without kube-proxy a
``service:`` reference cannot be reached.
"""

from driftwatch.devcluster.binaries import Binaries, BinariesMissing
from driftwatch.devcluster.cluster import Cluster, ExistingCluster, KubectlError, LocalCluster
from driftwatch.devcluster.processes import ComponentError

__all__ = [
    "Binaries",
    "BinariesMissing",
    "Cluster",
    "ComponentError",
    "ExistingCluster",
    "KubectlError",
    "LocalCluster",
]

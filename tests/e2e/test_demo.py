"""Stage 1 of ``driftwatch demo`` runs its steps against the session's cluster.

Only the stage-1 steps (namespace, workloads, what the controller-manager made of them) are run, in a
test namespace, so this needs no second control plane and nothing DriftWatch installs; the CronJob
wait is left to ``test_control_plane``, which already spends its minute on it. The later stages test
themselves.
"""

from __future__ import annotations

import io

from driftwatch import demo
from driftwatch.devcluster import Cluster, LocalCluster


def test_stage1_shows_what_the_controllers_made(cluster: Cluster, namespace: str) -> None:
    out = io.StringIO()
    state = demo.Demo(cluster=cluster, args=demo.parse_args(["--skip-cronjob"]), namespace=namespace, out=out)
    stage1 = [
        demo.Step("namespace", demo.step_namespace),
        demo.Step("workloads", demo.step_apply_workloads),
        demo.Step("controllers", demo.step_show_deployment),
    ]
    demo.run(state, stage1)

    text = out.getvalue()
    assert "deployment.apps/payments created" in text
    assert "cronjob.batch/nightly-scan created" in text
    assert "replicaset.apps/payments-" in text
    assert "ReplicaSet   payments-" in text  # the owner table: Pods owned by the ReplicaSet
    assert "Running" in text  # scheduled and run (on the local control plane: by kwok)
    if isinstance(cluster, LocalCluster):
        assert "fake Node" in text

"""Stages 2 and 3 of ``driftwatch demo`` against the session's cluster, in a test namespace: operator
installed as its ServiceAccount, a DriftMonitor, Pods recreated with the sidecar injected, real sidecars
fed by ``driftwatch simulate`` until the monitor is Drifting; then a canary Rollout whose canary Pods get
shifted traffic, aborted by the real Argo Rollouts controller on DriftWatch's verdict; the plot written."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from driftwatch import demo
from driftwatch.devcluster import Cluster


def test_stage2_detects_drift_end_to_end(
    argo_rollouts: Cluster, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = argo_rollouts
    monkeypatch.chdir(tmp_path)  # the plot goes to ./out
    out = io.StringIO()
    state = demo.Demo(cluster=cluster, args=demo.parse_args(["--skip-cronjob"]), namespace=namespace, out=out)
    steps = [s for s in demo.STEPS if s.run is not demo.step_wait_for_cronjob]
    with state.cleanup:
        demo.run(state, steps)
    text = out.getvalue()
    assert "driftwatch operator ready" in text
    assert "lack the sidecar" in text  # the Pods that predate the monitor are named
    assert re.search(r"\bapp\s+driftwatch-sidecar\s+payments\b", text), (
        text
    )  # the recreated ones were injected
    assert "Stable" in text
    assert "Drifting" in text
    assert "DriftStarted" in text
    assert '"verdict": "Fail"' in text
    # stage 3: the canary Rollout
    assert "rollout.argoproj.io/checkout created (v1)" in text
    assert "shifted +2 sd (the canary)" in text
    assert "verdict Fail: canary differs from stable: latency_ms" in text
    assert "the rollout was aborted" in text
    assert "RolloutAborted" in text
    assert "Failed" in text  # the AnalysisRun
    plots = list((tmp_path / "out").glob("driftwatch-demo-*.png"))
    assert len(plots) == 1
    assert plots[0].stat().st_size > 10_000
    # everything the demo started was stopped
    r = cluster.kubectl("get", "mutatingwebhookconfiguration", "driftwatch-sidecar-injector", check=False)
    assert r.returncode != 0

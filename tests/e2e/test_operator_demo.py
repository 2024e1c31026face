"""Stage 2 of ``driftwatch demo`` (DriftWatch itself) against the session's cluster, in a test namespace:
operator installed as its ServiceAccount, a DriftMonitor, Pods recreated with the sidecar injected, real
sidecars fed by ``driftwatch simulate`` until the monitor is Drifting, and the plot written."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from driftwatch import demo
from driftwatch.localcluster import Cluster


def test_stage2_detects_drift_end_to_end(
    cluster: Cluster, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the plot goes to ./out
    out = io.StringIO()
    state = demo.Demo(cluster=cluster, args=demo.parse_args(["--skip-cronjob"]), namespace=namespace, out=out)
    steps = [s for s in demo.STEPS if s.run is not demo.step_wait_for_cronjob]
    with state.cleanup:
        demo.run(state, steps)
    text = out.getvalue()
    assert "driftwatch operator ready" in text
    assert "lack the sidecar" in text  # the Pods that predate the monitor are named
    assert "app,driftwatch-sidecar" in text  # the recreated ones were injected
    assert "Stable" in text
    assert "Drifting" in text
    assert "DriftStarted" in text
    assert '"verdict": "Fail"' in text
    plots = list((tmp_path / "out").glob("driftwatch-demo-*.png"))
    assert len(plots) == 1
    assert plots[0].stat().st_size > 10_000
    # everything the demo started was stopped
    r = cluster.kubectl("get", "mutatingwebhookconfiguration", "driftwatch-sidecar-injector", check=False)
    assert r.returncode != 0

"""deploy/grafana/driftwatch-dashboard.json is what deploy/grafana/build_dashboard.py writes (the chart's
copy of the JSON is checked by tests/integration/test_packaging.py, the queries against a live system by
tests/e2e/test_dashboard.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BUILDER = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "build_dashboard.py"


def test_dashboard_json_is_what_the_builder_writes() -> None:
    spec = importlib.util.spec_from_file_location("build_dashboard", BUILDER)
    assert spec is not None
    assert spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert builder.OUT.read_text() == builder.render(), (
        "deploy/grafana/driftwatch-dashboard.json is stale: run python deploy/grafana/build_dashboard.py "
        "(then scripts/gen-manifests.sh)"
    )
    dashboard = json.loads(builder.OUT.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert ids == list(range(1, len(ids) + 1))
    for p in dashboard["panels"]:  # on the 24-column grid
        g = p["gridPos"]
        assert g["x"] >= 0, p["title"]
        assert g["x"] + g["w"] <= 24, p["title"]
    refs = [[t["refId"] for t in p.get("targets", [])] for p in dashboard["panels"]]
    assert all(len(r) == len(set(r)) for r in refs)

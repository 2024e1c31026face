"""The Grafana dashboard against a live system: every query of every panel returns data.

On the local control plane: the operator as its ServiceAccount with a real Redis, a DriftMonitor over a
Deployment whose two Pods are injected by the operator's webhook, and each Pod's sidecar run here as a
``driftwatch sidecar`` process (kwok starts no container) with the monitor's rendered ConfigMap, fed by
``driftwatch simulate``: normal traffic on key ``/pay``, a +6 sd spike on key ``/cart`` (so the drift
panels have a drift), and a few invalid samples (so the rejection panel has reasons). A real Prometheus
(Debian's) scrapes the sidecars and the operator every second, with the target labels a PodMonitor /
ServiceMonitor gives them (``pod``, ``namespace``) and a ``cluster`` label, as a multi-cluster setup has.

Then, as Grafana would run them, with the template variables substituted twice -- every variable at
"All" (``.*``), and every variable at one concrete value (this cluster, namespace, monitor, the drifting
feature and key) -- each panel target, the annotation and each variable's ``label_values`` query are
evaluated through Prometheus' HTTP API (range targets over the run, instant ones now), and each must
return data: not only parse. Every metric name the dashboard uses must be in the live scrape. A few
panels are also checked for the right answer (the drift, the leader, the shifted quantile).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.sidecars import SidecarFleet, rendered_config
from driftwatch.devcluster.stack import (
    OperatorProcess,
    app_template,
    free_port,
    http_ok,
    operator_stack,
    wait_for,
)

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "driftwatch-dashboard.json"
APP = "checkout"
CLUSTER = "e2e-local"
FEATURE, DRIFTING_KEY, NORMAL_KEY = "latency_ms", "/cart", "/pay"
#: Grafana's $__rate_interval for a 1 s scrape interval is 4 s; a little more leaves room for a late scrape
RATE_INTERVAL = "10s"
STEP = 2.0


# --- the live system -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def op(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    with operator_stack(cluster, tmp_path_factory.mktemp("dashboard")) as (operator, _redis):
        yield operator


def monitor() -> dict[str, Any]:
    return {
        "apiVersion": "driftwatch.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": APP},
        "spec": {
            "selector": {"matchLabels": {"app": APP}},
            "features": [{"name": FEATURE, "type": "numeric"}, {"name": "plan", "type": "categorical"}],
            "keys": {"label": "endpoint", "maxKeys": 10},
            "baseline": {"minSamples": 200, "window": 1000, "adopt": {"after": "never"}},
        },
    }


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": APP}},
            "template": app_template(APP, "v1"),
        },
    }


def status(cluster: Cluster, ns: str) -> dict[str, Any]:
    r = cluster.kubectl("get", "driftmonitor", APP, "-n", ns, "-o", "json", check=False)
    return (json.loads(r.stdout).get("status") or {}) if r.returncode == 0 else {}


def simulate(
    url: str, mode: str, key: str, seconds: float, *features: str, seed: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "driftwatch", "simulate", "--target", url, "--mode", mode, "--key", key,
         "--rate", "100", "--duration", str(seconds), "--change-at", "0.4", "--seed", str(seed),
         "--features", *features, "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def post(url: str, doc: Any) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{url}/v1/samples", json.dumps(doc).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        answer: dict[str, Any] = json.loads(r.read())
        return answer


class Prometheus:
    """Debian's prometheus scraping the given targets every second; queried over its HTTP API."""

    def __init__(self, workdir: Path, scrape_configs: list[dict[str, Any]]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.skip("prometheus is not installed (bash scripts/install-system-deps.sh)")
        cfg = workdir / "prometheus.yml"
        cfg.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": scrape_configs,
                }
            )
        )
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with (workdir / "prometheus.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={cfg}", f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for(lambda: http_ok(f"{self.url}/-/ready", timeout=1), 30, "Prometheus ready")
        self.started = time.time()

    def api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as r:
            doc = json.loads(r.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


# --- the dashboard, as Grafana runs it -----------------------------------------------------------------


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dashboard["panels"]:
        yield p
        yield from p.get("panels", [])


def grafana_regex(value: str) -> str:
    """A variable's value as Grafana's Prometheus datasource writes it into a =~ matcher."""
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\1", value)


def substitute(expr: str, variables: dict[str, str], range_seconds: float) -> str:
    macros = {
        "__rate_interval": RATE_INTERVAL,
        "__interval": f"{STEP:g}s",
        "__range": f"{int(range_seconds)}s",
    }

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name in macros:
            return macros[name]
        assert name in variables, f"unknown variable ${name} in {expr}"
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def seconds(duration: str) -> float:
    """A Grafana step such as ``30s`` or ``1m``."""
    m = re.fullmatch(r"(\d+)([smh])", duration)
    assert m, duration
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def label_values_query(variable: dict[str, Any]) -> tuple[str, str]:
    q = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q)
    assert m, f"variable {variable['name']}: not a label_values query: {q}"
    return m.group(1), m.group(2)


class Run:
    """Evaluates every query of the dashboard with one set of variable values."""

    def __init__(self, prom: Prometheus, dashboard: dict[str, Any], variables: dict[str, str]) -> None:
        self.prom, self.dashboard, self.variables = prom, dashboard, variables

    def targets(self) -> Iterator[tuple[str, str, bool, float]]:
        """(what, expr, instant, step) of every panel target and annotation."""
        for p in panels(self.dashboard):
            for t in p.get("targets", []):
                yield f"panel {p['id']} '{p['title']}' {t['refId']}", t["expr"], bool(t.get("instant")), STEP
        for a in self.dashboard["annotations"]["list"]:
            if a.get("expr"):
                step = seconds(a.get("step", "1m"))
                yield f"annotation '{a['name']}'", a["expr"], False, step

    def evaluate(self, expr: str, instant: bool, step: float) -> list[dict[str, Any]]:
        now = time.time()
        start = max(self.prom.started, now - 600)
        promql = substitute(expr, self.variables, now - start)
        if instant:
            result: list[dict[str, Any]] = self.prom.api("query", query=promql, time=now)["result"]
            return result
        # evaluated at start, start + step, ..., end: the last step at `now`, as Grafana aligns a range
        start = min(start, now - step)
        start = now - step * max(1, int((now - start) // step))
        result = self.prom.api("query_range", query=promql, start=start, end=now, step=step)["result"]
        return [s for s in result if s["values"]]

    def empty(self) -> list[str]:
        """What returned no data (panel targets, annotations, variables)."""
        missing = [
            what for what, expr, instant, step in self.targets() if not self.evaluate(expr, instant, step)
        ]
        for v in self.dashboard["templating"]["list"]:
            if v["type"] == "query" and not self.variable_values(v):
                missing.append(f"variable {v['name']}")
        return missing

    def variable_values(self, variable: dict[str, Any]) -> set[str]:
        """What Grafana lists for a ``label_values(selector, label)`` variable (the series API)."""
        selector, label = label_values_query(variable)
        series = self.prom.api("series", **{"match[]": substitute(selector, self.variables, 0)})
        return {s[label] for s in series if label in s}

    def value(self, title: str, ref: str = "A") -> float:
        p = next(p for p in panels(self.dashboard) if p["title"] == title)
        t = next(t for t in p["targets"] if t["refId"] == ref)
        result = self.evaluate(t["expr"], True, STEP)
        assert len(result) == 1, (title, result)
        return float(result[0]["value"][1])


def scrape_names(url: str) -> set[str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


# --- the test ------------------------------------------------------------------------------------------


def test_every_panel_returns_data_from_a_live_run(
    cluster: Cluster, op: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    ns = namespace
    cluster.create_namespace(ns, labels={"driftwatch.io/e2e": "true", "driftwatch.io/inject": "enabled"})
    cluster.apply(monitor(), namespace=ns)
    wait_for(
        lambda: any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in status(cluster, ns).get("conditions") or []
        ),
        60,
        "the DriftMonitor Ready",
    )
    cluster.apply(deployment(), namespace=ns)
    pods = wait_for(
        lambda: (
            items
            if len(items := cluster.kubectl_json("get", "pods", "-n", ns, "-l", f"app={APP}")["items"]) == 2
            else None
        ),
        60,
        "the Deployment's two Pods",
    )
    assert all(
        any(
            c["name"] == "driftwatch-sidecar"
            for c in [*p["spec"]["containers"], *(p["spec"].get("initContainers") or [])]
        )
        for p in pods
    ), "the webhook did not inject the sidecar"
    config = rendered_config(cluster, ns, APP)
    config["state"]["checkpointInterval"] = "2s"  # so the checkpoint panels have data within the test

    dashboard = json.loads(DASHBOARD.read_text())
    feeders: list[subprocess.Popen[bytes]] = []
    spikes: list[subprocess.Popen[bytes]] = []
    prom: Prometheus | None = None
    with SidecarFleet(config, tmp_path / "sidecars") as fleet:
        try:
            sidecars = [fleet.start(p["metadata"]["name"]) for p in pods]
            for i, side in enumerate(sidecars):
                url = f"http://127.0.0.1:{side.ingest}"
                feeders.append(simulate(url, "normal", NORMAL_KEY, 600, FEATURE, "plan:categorical", seed=i))
                spikes.append(simulate(url, "spike", DRIFTING_KEY, 30, FEATURE, seed=10 + i))
                answer = post(
                    url,
                    {
                        "samples": [
                            {"feature": FEATURE, "value": "fast"},
                            {"feature": "undeclared", "value": 1.0},
                        ]
                    },
                )
                assert len(answer["rejected"]) == 2, answer
            targets = [
                {
                    "targets": [side.metrics_url.removeprefix("http://").removesuffix("/metrics")],
                    # what a PodMonitor gives a sidecar (monitor: from the pod's driftwatch.io/monitor label)
                    "labels": {"cluster": CLUSTER, "namespace": ns, "pod": side.pod, "monitor": APP},
                }
                for side in sidecars
            ]
            operator_target = {
                "targets": [op.gate_url.removeprefix("http://")],
                "labels": {"cluster": CLUSTER},
            }
            prom = Prometheus(
                tmp_path,
                [
                    {"job_name": "driftwatch-sidecars", "honor_labels": True, "static_configs": targets},
                    {
                        "job_name": "driftwatch-operator",
                        "honor_labels": True,
                        "static_configs": [operator_target],
                    },
                ],
            )

            st = wait_for(
                lambda: (s := status(cluster, ns)).get("phase") == "Drifting" and s, 120, "phase Drifting"
            )
            assert FEATURE in st["driftingFeatures"]

            every = {v: ".*" for v in ("cluster", "namespace", "monitor", "feature", "key")}
            one = {
                "cluster": CLUSTER,
                "namespace": ns,
                "monitor": APP,
                "feature": FEATURE,
                "key": DRIFTING_KEY,
            }
            runs = {
                "All": Run(prom, dashboard, every),
                "one": Run(prom, dashboard, {k: grafana_regex(v) for k, v in one.items()}),
            }
            # data arrives over the run (a first checkpoint, a status round, a drift): wait for it all
            missing: dict[str, list[str]] = {}

            def complete() -> bool:
                missing.clear()
                for name, run in runs.items():
                    if empty := run.empty():
                        missing[name] = empty
                return not missing

            try:
                wait_for(complete, 120, "every panel's data", interval=2)
            except TimeoutError:
                pytest.fail(f"queries without data: {json.dumps(missing, indent=1)}")

            # every metric name the dashboard uses is in the live scrape
            live = set().union(
                *(scrape_names(s.metrics_url) for s in sidecars), scrape_names(f"{op.gate_url}/metrics")
            )
            used = set(re.findall(r"\b(driftwatch_[a-z_]+)", DASHBOARD.read_text()))
            assert len(used) >= 20
            assert used <= live, f"the dashboard uses metrics the live scrape lacks: {sorted(used - live)}"

            # the variables list what is there
            variables = {v["name"]: v for v in dashboard["templating"]["list"]}
            run = runs["All"]
            assert run.variable_values(variables["cluster"]) == {CLUSTER}
            assert ns in run.variable_values(variables["namespace"])
            assert run.variable_values(variables["monitor"]) >= {APP}
            assert run.variable_values(variables["feature"]) >= {FEATURE, "plan"}
            assert run.variable_values(variables["key"]) >= {DRIFTING_KEY, NORMAL_KEY}

            # and a few panels give the right answer
            focused = runs["one"]
            assert focused.value("Drifting streams") >= 1
            assert focused.value("Worst drift score") > 0.5
            assert focused.value("Monitors failing the gate") == 1
            assert focused.value("Reporting sidecars") == 2
            assert focused.value("Sidecars without Redis") == 0
            assert focused.value("Operator leaders") == 1
            since = focused.value("Drifting now", "C") / 1000
            assert prom.started - 60 < since <= time.time()
            # the stream's first drift shows, though its events counter was born at 1 (no increase())
            events = next(p for p in panels(dashboard) if p["title"] == "Drift events")["targets"][0]["expr"]
            starts = [
                max(float(v) for _, v in r["values"])
                for r in focused.evaluate(events, False, STEP)
                if r["metric"]["type"] == "DRIFT_START"
            ]
            assert starts, "the Drift events panel misses the drift"
            assert max(starts) >= 1
            # once the spike's samples fill the current window (its feeder has sent them all), the
            # table shows the shift: +6 sd of N(100, 10) puts the current median at ~1.6 x the baseline's
            table = next(p for p in panels(dashboard) if p["title"] == "Current against baseline")
            ratio = next(t["expr"] for t in table["targets"] if t["refId"] == "C")
            for f in spikes:
                f.wait(120)

            def median_ratio() -> float:
                p50 = [
                    float(r["value"][1])
                    for r in focused.evaluate(ratio, True, STEP)
                    if r["metric"]["quantile"] == "0.5"
                ]
                assert len(p50) == 1, p50
                return p50[0]

            wait_for(lambda: median_ratio() > 1.2, 60, "the current median above 1.2 x the baseline's")
        finally:
            for f in feeders + spikes:
                f.terminate()
                f.wait(10)
            if prom is not None:
                prom.stop()

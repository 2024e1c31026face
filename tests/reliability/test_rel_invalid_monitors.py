"""A corpus of invalid DriftMonitors (invalid_monitors.yaml), each refused with a message naming the
field -- by the API server where the CRD can know (schema, CEL), else by the operator -- and never
discovered by the app's pods: a refused monitor injects nothing.

Before issue 12, ``spec.ingest`` was stored unvalidated (the sidecar exited 2 on it: a crash loop in
every selected pod), negative quantities matched the CRD's pattern, a request above the default limit
made the API server refuse every pod (FailedCreate), ``spec.sidecar.image`` ran any image, a Redis
password in ``spec.redis.url`` was accepted, and a missing baseline ConfigMap left pods in
ContainerCreating.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from reliability_helpers import INJECT_LABELS, get, monitor, pod, sidecars, wait_condition

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.stack import OperatorProcess, RedisServer, install_crd, operator_stack, wait_for
from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.options import OperatorOptions
from driftwatch.vocab.spec import ConfigError

CORPUS: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "invalid_monitors.yaml").read_text())
API = [c for c in CORPUS if c["stage"] == "api"]
OPERATOR = [c for c in CORPUS if c["stage"] == "operator"]


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> None:
    install_crd(cluster)


@pytest.mark.parametrize("case", API, ids=[c["id"] for c in API])
def test_api_server_refuses_naming_the_field(
    cluster: Cluster, crd: None, namespace: str, case: dict[str, Any]
) -> None:
    code, _, err = cluster.dry_run(namespace=namespace, obj=monitor("bad", **case["spec"]))
    assert code != 0, f"accepted: {case['spec']}"
    assert case["field"] in err, err


@pytest.mark.parametrize("case", API, ids=[c["id"] for c in API])
def test_operator_model_refuses_what_it_reads(case: dict[str, Any]) -> None:
    """The second line: a CRD applied without its schema (an old one, kubectl --validate=false on a
    preserve-unknown CRD) must not let the operator render what the sidecar would exit on."""
    body = {**monitor("bad", **case["spec"]), "metadata": {"name": "bad", "namespace": "shop", "uid": "u"}}
    with pytest.raises(ConfigError) as e:
        Monitor.from_body(body, OperatorOptions(sidecar_image="driftwatch:test"))
    assert str(e.value).startswith(case["field"]), str(e.value)


@pytest.mark.parametrize("case", OPERATOR, ids=[c["id"] for c in OPERATOR])
def test_api_server_accepts_what_only_the_operator_can_judge(
    cluster: Cluster, crd: None, namespace: str, case: dict[str, Any]
) -> None:
    code, _, err = cluster.dry_run(namespace=namespace, obj=monitor("fine", **case["spec"]))
    assert code == 0, err


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, RedisServer]]:
    with operator_stack(cluster, tmp_path_factory.mktemp("operator"), sidecar_image="driftwatch:local") as s:
        yield s


def test_operator_refuses_naming_the_field_and_injects_nothing(
    cluster: Cluster, stack: tuple[OperatorProcess, RedisServer], namespace: str
) -> None:
    cluster.create_namespace(namespace, labels=INJECT_LABELS)
    for i, case in enumerate(OPERATOR):
        cluster.apply(monitor(f"bad{i}", app=f"app{i}", **case["spec"]), namespace=namespace)
    for i, case in enumerate(OPERATOR):
        ready = wait_condition(cluster, namespace, f"bad{i}", "False")
        assert case["field"] in ready["message"], (case["id"], ready)
    # the app's pods start as if DriftWatch were not there: no sidecar, nothing that could keep them
    for i, _ in enumerate(OPERATOR):
        cluster.apply(pod(f"p{i}", f"app{i}"), namespace=namespace)
        created = wait_for(lambda i=i: get(cluster, "pod", namespace, f"p{i}"), 30, f"pod p{i}")
        assert sidecars(created) == [], OPERATOR[i]["id"]


def test_missing_baseline_configmap_recovers_once_created(
    cluster: Cluster, stack: tuple[OperatorProcess, RedisServer], namespace: str
) -> None:
    cluster.create_namespace(namespace, labels=INJECT_LABELS)
    spec = {"baseline": {"mode": "fromConfigMap", "configMap": "reference"}}
    cluster.apply(monitor("late", app="late", **spec), namespace=namespace)
    assert "spec.baseline.configMap" in wait_condition(cluster, namespace, "late", "False")["message"]
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "reference"},
        "data": {"x.txt": "1\n2\n"},
    }
    cluster.apply(cm, namespace=namespace)
    wait_condition(cluster, namespace, "late", "True", timeout=60)  # the operator's retry finds it
    cluster.apply(pod("p", "late"), namespace=namespace)
    created = wait_for(lambda: get(cluster, "pod", namespace, "p"), 30, "pod p")
    assert len(sidecars(created)) == 1
    vol = next(v for v in created["spec"]["volumes"] if v["name"] == "driftwatch-baseline")
    assert vol["configMap"]["optional"] is True  # deleted later: pods still start

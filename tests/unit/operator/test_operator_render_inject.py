"""render and inject are pure: the children and the pod patch, checked shape by shape."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import jsonpatch
import pytest
import yaml

from driftwatch.operator import command, inject, render
from driftwatch.operator.driftmonitor import Monitor, Selector
from driftwatch.operator.options import OperatorOptions
from driftwatch.vocab.spec import ConfigError, MonitorSpec

OPTS = OperatorOptions(sidecar_image="driftwatch:test")


def monitor(name: str = "payments", **spec: Any) -> Monitor:
    body = {
        "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}", "generation": 1},
        "spec": {"selector": {"matchLabels": {"app": "payments"}}, **spec},
    }
    return Monitor.from_body(body, OPTS)


def pod(
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    volumes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"generateName": "payments-abc-", "namespace": "shop"}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "app:1"}]}
    if volumes is not None:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


# --- render -----------------------------------------------------------------------------------------


def test_children_have_owner_and_labels() -> None:
    m = monitor()
    kids = render.children(m, OPTS, prometheus=True)
    # no PrometheusRule: the chart's one rule set alerts for every monitor (decisions.md §27)
    assert [k["kind"] for k in kids] == ["ConfigMap", "Service", "ServiceMonitor"]
    for k in kids:
        ref = k["metadata"]["ownerReferences"][0]
        assert ref == {
            "apiVersion": "driftwatch.io/v1alpha1",
            "kind": "DriftMonitor",
            "name": "payments",
            "uid": "uid-payments",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert k["metadata"]["name"] == "driftwatch-payments"
        assert k["metadata"]["namespace"] == "shop"
        assert k["metadata"]["labels"]["driftwatch.io/monitor"] == "payments"
    assert [k["kind"] for k in render.children(m, OPTS, prometheus=False)] == ["ConfigMap", "Service"]


def test_config_map_is_the_sidecar_config_contract() -> None:
    m = monitor(features=[{"name": "latency_ms", "type": "numeric"}], redis={"keyPrefix": "dw"})
    cm = render.config_map(m, OPTS)
    cfg = yaml.safe_load(cm["data"]["sidecar.yaml"])
    assert cfg["monitor"] == {"name": "payments", "namespace": "shop"}
    assert cfg["redis"] == {"url": OPTS.redis_url, "keyPrefix": "dw"}
    assert cfg["listen"] == {"host": "127.0.0.1", "port": 8476, "metricsPort": 9476}
    # and the sidecar's own settings parser accepts the whole file
    from driftwatch.sidecar.settings import Settings

    settings = Settings.parse(cfg, env={"POD_NAME": "payments-abc-1"})
    assert settings.prefix == "dw:{shop:payments}"
    assert settings.pod == "payments-abc-1"
    # the sidecar parses the spec with the shared model: it must accept what we render
    assert MonitorSpec.parse(cfg["spec"]).features[0].name == "latency_ms"
    # a changed spec is a changed hash (so reconcile shows updates)
    assert (
        render.config_map(monitor(preset="sustained-zscore"), OPTS)["metadata"]["annotations"]
        != cm["metadata"]["annotations"]
    )


def test_service_is_headless_and_selects_injected_pods() -> None:
    svc = render.metrics_service(monitor())
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == {"driftwatch.io/monitor": "payments"}
    assert svc["spec"]["ports"][0]["port"] == 9476


def test_service_monitor_endpoint_defaults_keep_the_sidecars_labels() -> None:
    (endpoint,) = render.service_monitor(monitor(), OPTS)["spec"]["endpoints"]
    assert endpoint == {"port": "metrics", "path": "/metrics", "interval": "30s", "honorLabels": True}


def test_service_monitor_endpoint_takes_the_scrape_settings() -> None:
    relabel = [{"action": "labeldrop", "regex": "pod"}]
    settings = command.scrape_settings(
        json.dumps(
            {"interval": "15s", "scrapeTimeout": "5s", "honorLabels": False, "metricRelabelings": relabel}
        )
    )
    opts = dataclasses.replace(OPTS, sidecar_scrape=settings)
    (endpoint,) = render.service_monitor(monitor(), opts)["spec"]["endpoints"]
    assert endpoint == {
        "port": "metrics",
        "path": "/metrics",
        "interval": "15s",
        "scrapeTimeout": "5s",
        "honorLabels": False,
        "metricRelabelings": relabel,
    }


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('{"intervall": "30s"}', "intervall"),
        ('{"relabelings": {}}', "relabelings"),
        ('{"honorLabels": "yes"}', "honorLabels"),
        ("[1]", "JSON object"),
        ("{", "not JSON"),
    ],
)
def test_bad_scrape_settings_are_refused_naming_the_key(text: str, names: str) -> None:
    with pytest.raises(command.OptionError, match="--sidecar-scrape") as e:
        command.scrape_settings(text)
    assert names in str(e.value)


# --- selector ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "match"),
    [
        ({"matchLabels": {"app": "a"}}, {"app": "a", "x": "y"}, True),
        ({"matchLabels": {"app": "a"}}, {"app": "b"}, False),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]},
            {"tier": "api"},
            True,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, {"canary": "1"}, False),
    ],
)
def test_selector(selector: dict[str, Any], labels: dict[str, str], match: bool) -> None:
    assert Selector.parse(selector).matches(labels) is match


def test_empty_selector_rejected() -> None:
    with pytest.raises(ConfigError, match=r"spec\.selector"):
        Selector.parse({})


# --- inject -----------------------------------------------------------------------------------------


def apply(p: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    return jsonpatch.apply_patch(copy.deepcopy(p), ops)


@pytest.mark.parametrize("volumes", [None, [{"name": "data", "emptyDir": {}}]])
@pytest.mark.parametrize("annotations", [None, {"other": "x"}])
def test_patch_applies_to_any_pod_shape(volumes: Any, annotations: Any) -> None:
    p = pod({"app": "payments"}, annotations, volumes)
    d = inject.decide(p, [monitor()], OPTS)
    assert d.injects
    assert d.monitor == "payments"
    out = apply(p, d.patch)
    assert [c["name"] for c in out["spec"]["containers"]] == ["app"]
    # a native sidecar: an init container that keeps running (restartPolicy Always)
    (sidecar,) = out["spec"]["initContainers"]
    assert sidecar["name"] == "driftwatch-sidecar"
    assert sidecar["restartPolicy"] == "Always"
    assert out["metadata"]["labels"]["driftwatch.io/monitor"] == "payments"
    assert out["metadata"]["annotations"]["driftwatch.io/injected"] == "payments"
    vols = {v["name"]: v for v in out["spec"]["volumes"]}
    assert vols["driftwatch-config"]["configMap"]["name"] == "driftwatch-payments"
    if volumes:
        assert "data" in vols
    # never twice: the patched pod is recognised (reinvocation)
    assert inject.decide(out, [monitor()], OPTS).patch == []


def test_sidecar_passes_restricted_pod_security() -> None:
    c = inject.sidecar_container(monitor(), OPTS)
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["runAsUser"] != 0
    assert not any("hostPort" in port for port in c["ports"])
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert {p["containerPort"] for p in c["ports"]} == {8476, 9476}
    assert c["args"][-1] == "/etc/driftwatch/sidecar.yaml"
    assert c["resources"]["requests"]["cpu"] == "50m"


def test_sidecar_security_context_is_replaced_whole_by_the_option() -> None:
    """The chart's sidecar.containerSecurityContext (DRIFTWATCH_SIDECAR_SECURITY_CONTEXT) replaces the
    default, it is not merged into it: a platform that wants a different UID sets exactly what it wants."""
    wanted = {"runAsNonRoot": True, "runAsUser": 1001, "allowPrivilegeEscalation": False}
    opts = dataclasses.replace(
        OPTS, sidecar_security_context=command.json_object("--sidecar-security-context", json.dumps(wanted))
    )
    assert inject.sidecar_container(monitor(), opts)["securityContext"] == wanted
    assert inject.sidecar_container(monitor(), OPTS)["securityContext"] == inject.default_security_context(
        OPTS
    )


def test_spec_sidecar_overrides() -> None:
    m = monitor(sidecar={"resources": {"limits": {"memory": "1Gi"}}})
    c = inject.sidecar_container(m, OPTS)
    assert c["image"] == "driftwatch:test"
    assert c["resources"]["limits"]["memory"] == "1Gi"
    assert c["resources"]["requests"]["memory"] == "96Mi"


def test_sidecar_image_is_the_operators_or_an_allowed_one() -> None:
    with pytest.raises(ConfigError, match=r"^spec\.sidecar\.image: 'evil:1' is not an allowed sidecar image"):
        monitor(sidecar={"image": "evil:1"})
    allowing = OperatorOptions(sidecar_image="driftwatch:test", allowed_images=("mirror/driftwatch:test",))
    body = {
        "metadata": {"name": "m", "namespace": "shop", "uid": "u"},
        "spec": {"selector": {"matchLabels": {"app": "a"}}, "sidecar": {"image": "mirror/driftwatch:test"}},
    }
    assert Monitor.from_body(body, allowing).image == "mirror/driftwatch:test"
    assert monitor(sidecar={"image": "driftwatch:test"}).image == "driftwatch:test"


def test_native_sidecar_probes_and_existing_init_containers() -> None:
    p = pod({"app": "payments"})
    p["spec"]["initContainers"] = [{"name": "migrate", "image": "app:1"}]
    out = apply(p, inject.decide(p, [monitor()], OPTS).patch)
    # after the app's own init containers, which still run to completion first
    assert [c["name"] for c in out["spec"]["initContainers"]] == ["migrate", "driftwatch-sidecar"]
    side = out["spec"]["initContainers"][1]
    assert side["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "dw-metrics"}
    assert side["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "dw-metrics"}
    assert "readinessProbe" not in side  # a sidecar's readiness would count toward the app's pod
    assert inject.decide(out, [monitor()], OPTS).patch == []  # recognised as injected


@pytest.mark.parametrize(
    "p",
    [
        pod({"app": "payments"}, {"driftwatch.io/inject": "false"}),
        pod({"app": "payments", "driftwatch.io/inject": "false"}),
        pod({"app": "other"}),
        pod(None),
    ],
    ids=["annotation-opt-out", "label-opt-out", "not-selected", "no-labels"],
)
def test_no_patch(p: dict[str, Any]) -> None:
    assert inject.decide(p, [monitor()], OPTS).patch == []


def test_injection_disabled_on_monitor() -> None:
    d = inject.decide(pod({"app": "payments"}), [monitor(injection={"enabled": False})], OPTS)
    assert d.patch == []
    assert "injection.enabled=false" in d.reason


def test_two_monitors_first_by_name_wins() -> None:
    d = inject.decide(pod({"app": "payments"}), [monitor("zeta"), monitor("alpha")], OPTS)
    assert d.monitor == "alpha"


@pytest.mark.parametrize("volumes", [None, [{"name": "data", "emptyDir": {}}]])
def test_from_config_map_baseline_is_mounted_and_rendered(volumes: Any) -> None:
    m = monitor(baseline={"mode": "fromConfigMap", "configMap": "payments-reference"})
    p = pod({"app": "payments"}, volumes=volumes)
    out = apply(p, inject.decide(p, [m], OPTS).patch)
    vols = {v["name"]: v for v in out["spec"]["volumes"]}
    assert vols["driftwatch-baseline"]["configMap"] == {
        "name": "payments-reference",
        "optional": True,  # deleted after injection: the app's pod must still start
        "defaultMode": 0o444,
    }
    assert vols["driftwatch-config"]["configMap"]["name"] == "driftwatch-payments"
    if volumes:
        assert "data" in vols
    sidecar = next(c for c in out["spec"]["initContainers"] if c["name"] == "driftwatch-sidecar")
    mounts = {v["name"]: v for v in sidecar["volumeMounts"]}
    assert mounts["driftwatch-baseline"] == {
        "name": "driftwatch-baseline",
        "mountPath": "/etc/driftwatch/baseline",
        "readOnly": True,
    }
    # the sidecar reads the same directory (its state.baselineDir)
    cfg = yaml.safe_load(render.config_map(m, OPTS)["data"]["sidecar.yaml"])
    assert cfg["state"]["baselineDir"] == mounts["driftwatch-baseline"]["mountPath"]
    assert cfg["spec"]["baseline"]["configMap"] == "payments-reference"
    assert inject.decide(out, [m], OPTS).patch == []  # never twice


def test_learned_baseline_mounts_nothing_extra() -> None:
    m = monitor()
    out = apply(pod({"app": "payments"}), inject.decide(pod({"app": "payments"}), [m], OPTS).patch)
    assert [v["name"] for v in out["spec"]["volumes"]] == ["driftwatch-config"]
    sidecar = next(c for c in out["spec"]["initContainers"] if c["name"] == "driftwatch-sidecar")
    assert [v["name"] for v in sidecar["volumeMounts"]] == ["driftwatch-config"]
    cfg = yaml.safe_load(render.config_map(m, OPTS)["data"]["sidecar.yaml"])
    assert "baselineDir" not in cfg["state"]

"""``driftwatch operator`` flags and the environment the Helm chart sets."""

from __future__ import annotations

import pytest

from driftwatch.operator import command


def opts(argv: list[str]) -> command.OperatorOptions:
    return command.options_from(command.parser().parse_args(argv))


def test_defaults_outside_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in command.ENV.values():
        monkeypatch.delenv(var, raising=False)
    o = opts([])
    assert o.webhook_mode == "url"  # no service account token here
    assert o.webhook_url == "https://127.0.0.1:9443"
    assert o.failure_policy == "Ignore"
    assert o.tls_mode == "self"
    assert o.namespaces == ()
    assert o.stale_after == 30.0


def test_chart_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "POD_NAMESPACE": "dw",
        "DRIFTWATCH_REDIS_URL": "redis://r:6379/1",
        "DRIFTWATCH_SIDECAR_IMAGE": "img:1",
        "DRIFTWATCH_SIDECAR_RESOURCES": '{"requests": {"cpu": "10m"}, "limits": {"memory": "1Gi"}}',
        "DRIFTWATCH_WEBHOOK_FAILURE_POLICY": "Fail",
        "DRIFTWATCH_INJECT_LABEL": "example.com/dw=on",
        "DRIFTWATCH_CERT_MODE": "operator",
        "DRIFTWATCH_HTTP_PORT": "8081",
        "DRIFTWATCH_WEBHOOK_ENABLED": "false",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    o = opts(["-n", "shop", "--sidecar-publish-interval", "2"])
    assert o.operator_namespace == "dw"
    assert o.redis_url == "redis://r:6379/1"
    assert o.sidecar_image == "img:1"
    assert o.sidecar_requests == {"cpu": "10m", "memory": "96Mi"}
    assert o.sidecar_limits == {"memory": "1Gi"}
    assert o.failure_policy == "Fail"
    assert o.inject_label == ("example.com/dw", "on")
    assert o.tls_mode == "self"
    assert o.gate_port == 8081
    assert o.webhook_port == 0  # webhook disabled
    assert o.namespaces == ("shop",)
    assert o.stale_after == 30.0


def test_flags_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWATCH_WEBHOOK_FAILURE_POLICY", "Fail")
    assert opts(["--failure-policy", "Ignore"]).failure_policy == "Ignore"


def test_exclusive_namespace_flags() -> None:
    assert command.main(["-A", "-n", "x"]) == 2

"""The sidecar config file: defaults, and errors that name the field."""

from __future__ import annotations

import pytest

from driftwatch.sidecar.settings import MIB, Settings, load
from driftwatch.vocab.spec import ConfigError


def test_minimal_config_has_safe_defaults() -> None:
    s = Settings.parse({"monitor": {"name": "payments", "namespace": "shop"}}, env={"POD_NAME": "p-1"})
    assert (s.host, s.port, s.metrics_port) == ("127.0.0.1", 8476, 9476)
    assert s.limits.body_limit == MIB
    assert s.pod == "p-1"
    assert s.prefix == "driftwatch:{shop:payments}"
    assert s.redis_url is None
    assert s.token is None
    assert s.scrape is None
    for off in (0, None):
        assert Settings.parse({"listen": {"metricsPort": off}}, env={}).metrics_port is None


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"listen": {"port": "x"}}, "listen.port"),
        ({"limits": {"bodyLimit": 1}}, "limits.bodyLimit"),
        ({"limits": {"allowedLateness": "soon"}}, "limits.allowedLateness"),
        ({"redis": {"url": "http://x"}}, "redis.url"),
        ({"spec": {"features": [{"name": "a", "type": "text"}]}}, "spec.features[0].type"),
        ({"ingest": {"scrape": {"url": "x", "metrics": ["m"]}}}, "ingest.scrape.url"),
        ({"ingest": {"scrape": {"url": "http://a/metrics", "metrics": []}}}, "ingest.scrape.metrics"),
        ({"auth": {"tokenEnv": "NOPE_NOT_SET"}}, "auth.tokenEnv"),
        ({"bogus": 1}, "config.bogus"),
    ],
)
def test_errors_name_the_field(doc: dict, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.parse({"monitor": {"name": "m"}, **doc}, env={})
    assert e.value.field == field


def test_ingest_from_spec_extra_token_file_and_yaml(tmp_path) -> None:
    (tmp_path / "token").write_text("abc\n")
    (tmp_path / "c.yaml").write_text(
        "monitor: {name: m}\n"
        "auth: {tokenFile: token}\n"
        "spec:\n  keys: {label: endpoint}\n"
        "  ingest: {scrape: {url: 'http://127.0.0.1:1/metrics', interval: 5s, metrics: [a_total]}}\n"
    )
    s = load(tmp_path / "c.yaml", env={})
    assert s.token == "abc"
    assert s.scrape is not None
    assert s.scrape.interval == 5.0
    assert s.scrape.key_label == "endpoint"
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "missing.yaml")

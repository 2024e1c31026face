"""The spec model: defaults, and errors that name the field."""

from __future__ import annotations

import pytest

from driftwatch.vocab.spec import ConfigError, MonitorSpec, parse_duration, parse_manifest


def test_empty_spec_gets_every_default() -> None:
    spec = MonitorSpec.parse({})
    assert spec.features == ()
    assert spec.sensitivity.false_alarms_per == 10_000
    assert (spec.sensitivity.warning, spec.sensitivity.critical) == (0.2, 0.5)
    assert spec.baseline.min_samples == 100
    assert spec.recovery.consecutive_normal == 50
    assert spec.preset == "auto"
    assert spec.accepts("anything")


def test_features_shorthand_and_lookup() -> None:
    spec = MonitorSpec.parse({"features": ["latency_ms", {"name": "plan", "type": "categorical"}]})
    assert [f.name for f in spec.features] == ["latency_ms", "plan"]
    plan = spec.feature("plan")
    assert plan is not None
    assert plan.type == "categorical"
    assert spec.accepts("plan")
    assert not spec.accepts("other")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"features": "latency"}, "spec.features"),
        ({"features": [{"type": "numeric"}]}, "spec.features[0].name"),
        ({"features": [{"name": "x", "type": "float"}]}, "spec.features[0].type"),
        ({"features": ["x", "x"]}, "spec.features[1].name"),
        ({"features": [{"name": "bad name"}]}, "spec.features[0].name"),
        ({"sensitivity": {"falseAlarmsPer": "many"}}, "spec.sensitivity.falseAlarmsPer"),
        ({"sensitivity": {"falseAlarmsPer": 5}}, "spec.sensitivity.falseAlarmsPer"),
        ({"sensitivity": {"warning": 0.7, "critical": 0.5}}, "spec.sensitivity.warning"),
        ({"sensitivity": {"warning": float("nan")}}, "spec.sensitivity.warning"),
        ({"baseline": {"minSamples": 500, "window": 100}}, "spec.baseline.window"),
        ({"baseline": {"mode": "fromWindow"}}, "spec.baseline.start"),
        ({"baseline": {"minSamples": True}}, "spec.baseline.minSamples"),
        ({"preset": "magic"}, "spec.preset"),
        ({"recovery": {"consecutiveNormal": 0}}, "spec.recovery.consecutiveNormal"),
        ({"scan": {"schedule": "often"}}, "spec.scan.schedule"),
        ({"scan": {"tests": ["ks", "t-test"]}}, "spec.scan.tests[1]"),
        ({"scan": {"current": "1 hour"}}, "spec.scan.current"),
        ({"keys": {"maxKeys": 0}}, "spec.keys.maxKeys"),
        ({"surprise": 1}, "spec.surprise"),
        ([], "spec"),
    ],
)
def test_bad_values_name_their_field(spec: object, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        MonitorSpec.parse(spec)
    assert err.value.field == field
    assert str(err.value).startswith(field + ":")


def test_operator_fields_are_kept_verbatim() -> None:
    spec = MonitorSpec.parse({"selector": {"matchLabels": {"app": "a"}}, "features": ["x"]})
    assert spec.extra == {"selector": {"matchLabels": {"app": "a"}}}


def test_manifest() -> None:
    doc = {"kind": "DriftMonitor", "metadata": {"name": "m", "namespace": "ns"}, "spec": {"features": ["x"]}}
    name, ns, spec = parse_manifest(doc)
    assert (name, ns, spec.features[0].name) == ("m", "ns", "x")
    with pytest.raises(ConfigError, match="kind"):
        parse_manifest({"kind": "Deployment"})


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("7d", 604800)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "1.5h", "h", "10y"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text, "spec.scan.current")

"""The CRD mirrors driftwatch/vocab/spec.py: same defaults, same ranges, same enums.

The API server validates with the CRD, the sidecar with config.py; if they disagreed a spec could pass
one and fail the other. These tests walk the schema so a new field in either place is caught.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftwatch.vocab.spec import SCAN_TESTS, ConfigError, MonitorSpec

CRD_PATH = Path(__file__).resolve().parents[3] / "crds" / "driftwatch.io_driftmonitors.yaml"
#: top-level spec fields only the operator reads (config.py keeps them verbatim)
OPERATOR_ONLY = MonitorSpec.OPERATOR_FIELDS


def crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_PATH.read_text())


def spec_schema() -> dict[str, Any]:
    version = crd()["spec"]["versions"][0]
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting as the API server does it: defaults of absent properties, recursively."""
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    out = dict(value)
    for key, sub in (schema.get("properties") or {}).items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = apply_defaults(sub, out[key])
    return out


def test_crd_identity() -> None:
    doc = crd()
    assert doc["metadata"]["name"] == "driftmonitors.driftwatch.io"
    assert doc["spec"]["names"]["shortNames"] == ["dm"]
    assert doc["spec"]["scope"] == "Namespaced"
    version = doc["spec"]["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert {"Phase", "Drifting", "Verdict", "Age"} <= set(columns)


def test_crd_defaults_equal_config_defaults() -> None:
    # spec.scan has no default (without it there is no CronJob): its defaults apply once it is given
    for given in ({}, {"scan": {}}):
        spec = {"selector": {"matchLabels": {"app": "x"}}, **given}
        assert MonitorSpec.parse(apply_defaults(spec_schema(), spec)) == MonitorSpec.parse(spec)
    defaulted = apply_defaults(spec_schema(), {"selector": {"matchLabels": {"app": "x"}}, "scan": {}})
    # every defaulted section is one config.py parses with the same values, field by field
    parsed = MonitorSpec.parse({"scan": {}}).to_dict()
    camel = {
        "min_samples": "minSamples",
        "false_alarms_per": "falseAlarmsPer",
        "max_keys": "maxKeys",
        "consecutive_normal": "consecutiveNormal",
    }
    for section in ("baseline", "sensitivity", "recovery", "scan", "gate"):
        for snake, value in parsed[section].items():
            key = camel.get(snake, snake)
            if key in defaulted[section] and key != "reservoir":  # durations there: compared above
                expected = list(value) if isinstance(value, tuple) else value
                assert defaulted[section][key] == expected, f"spec.{section}.{key}"


def test_every_spec_field_is_known_to_config() -> None:
    props = set(spec_schema()["properties"])
    config_fields = {"features", "keys", "baseline", "sensitivity", "preset", "recovery", "scan", "gate"}
    assert props == config_fields | OPERATOR_ONLY


def _numeric_leaves(schema: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for key, sub in (schema.get("properties") or {}).items():
        p = f"{path}.{key}"
        if sub.get("type") in {"integer", "number"} and "minimum" in sub:
            out.append((p, sub))
        elif sub.get("type") == "object":
            out += _numeric_leaves(sub, p)
    return out


NUMERIC = [(p, s) for p, s in _numeric_leaves(spec_schema(), "spec") if p.split(".")[1] not in OPERATOR_ONLY]


def _set(path: str, value: Any) -> dict[str, Any]:
    parts = path.split(".")[1:]
    d: dict[str, Any] = {}
    cur = d
    for k in parts[:-1]:
        cur = cur.setdefault(k, {})
    cur[parts[-1]] = value
    return d


@pytest.mark.parametrize(("path", "schema"), NUMERIC, ids=[p for p, _ in NUMERIC])
def test_ranges_match_config(path: str, schema: dict[str, Any]) -> None:
    lo, hi = schema["minimum"], schema["maximum"]
    step = 1 if schema["type"] == "integer" else 0.001
    # sensitivity's cross-field rule (warning <= critical) is exercised separately
    if path.endswith("sensitivity.warning"):
        base = {"critical": 1.0}
    elif path.endswith("sensitivity.critical"):
        base = {"warning": 0.0}
    elif path.endswith("baseline.minSamples"):
        base = {"window": 10_000_000}
    elif path.endswith("baseline.window"):
        base = {"minSamples": 10}
    else:
        base = {}
    section = path.split(".")[1]

    def spec(v: Any) -> dict[str, Any]:
        d = _set(path, v)
        d[section] = {**base, **d[section]}
        return d

    MonitorSpec.parse(spec(lo))
    MonitorSpec.parse(spec(hi))
    for bad in (lo - step, hi + step):
        with pytest.raises(ConfigError) as err:
            MonitorSpec.parse(spec(bad))
        assert err.value.field == path


def test_enums_match_config() -> None:
    props = spec_schema()["properties"]
    assert props["preset"]["enum"] == ["auto", "zscore-consecutive", "sustained-zscore"]
    feat = props["features"]["items"]["properties"]
    for enum_field in ("type", "transform"):
        for v in feat[enum_field]["enum"]:
            MonitorSpec.parse(
                {"features": [{"name": "x", enum_field: v}]}
                if v != "log"
                else {"features": [{"name": "x", "type": "numeric", enum_field: v}]}
            )
        with pytest.raises(ConfigError, match=f"features\\[0\\].{enum_field}"):
            MonitorSpec.parse({"features": [{"name": "x", enum_field: "bogus"}]})
    pattern = props["scan"]["properties"]["tests"]["items"]["pattern"]
    assert pattern.endswith(f"({'|'.join(SCAN_TESTS)})$")
    MonitorSpec.parse({"scan": {"tests": [*SCAN_TESTS, "amount=ad"]}})


def test_status_declares_what_the_operator_writes() -> None:
    version = crd()["spec"]["versions"][0]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    for key in (
        "phase",
        "verdict",
        "score",
        "features",
        "pods",
        "lastUpdate",
        "observedGeneration",
        "conditions",
        "driftingFeatures",
    ):
        assert key in status, key
    cond = status["conditions"]
    assert cond["x-kubernetes-list-type"] == "map"
    assert cond["x-kubernetes-list-map-keys"] == ["type"]

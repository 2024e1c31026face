"""The CRD's ``spec.alerts`` schema and ``AlertsSpec.parse`` agree: a manifest the API server accepts
is one the alert library reads, field for field and range for range."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from driftwatch.alerts import AlertsSpec
from driftwatch.vocab.spec import ConfigError

ROOT = Path(__file__).resolve().parents[2]
REF = {"secretKeyRef": {"name": "s", "key": "k"}}
FULL = {
    "minSeverity": "critical",
    "repeatInterval": "30m",
    "rateLimit": {"burst": 3, "perHour": 12},
    "webhook": {"urlFrom": REF, "minSeverity": "warning"},
    "slack": {"webhookUrlFrom": REF, "channel": "#alerts", "minSeverity": "critical"},
    "email": {
        "to": ["a@example.com"],
        "from": "dw@example.com",
        "minSeverity": "warning",
        "smtp": {
            "host": "smtp.example.com",
            "port": 587,
            "tls": "starttls",
            "usernameFrom": REF,
            "passwordFrom": REF,
        },
    },
}


def alerts_schema() -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / "driftwatch.io_driftmonitors.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    alerts: dict[str, Any] = spec["properties"]["alerts"]
    return alerts


def paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    out = set()
    for k, sub in (schema.get("properties") or {}).items():
        out.add(prefix + k)
        out |= paths(sub, f"{prefix}{k}.")
    return out


def value_paths(d: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(d, dict):
        for k, v in d.items():
            out.add(prefix + k)
            out |= value_paths(v, f"{prefix}{k}.")
    return out


def test_full_example_is_valid_for_both() -> None:
    jsonschema.validate(FULL, alerts_schema())
    s = AlertsSpec.parse(FULL)
    assert len(s.channels) == 3


def test_every_schema_field_is_read_by_the_library() -> None:
    assert paths(alerts_schema()) == value_paths(FULL)


@pytest.mark.parametrize(
    ("path", "lo", "hi"),
    [("rateLimit.burst", 1, 1000), ("rateLimit.perHour", 1, 100_000), ("email.smtp.port", 1, 65535)],
)
def test_ranges_match(path: str, lo: int, hi: int) -> None:
    node = alerts_schema()
    for part in path.split("."):
        node = node["properties"][part]
    assert (node["minimum"], node["maximum"]) == (lo, hi)

    def with_value(v: int) -> dict[str, Any]:
        d: dict[str, Any] = {"email": {"to": ["a@b.c"], "smtp": {"host": "h"}}}
        cur = d
        parts = path.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = v
        return d

    AlertsSpec.parse(with_value(lo))
    AlertsSpec.parse(with_value(hi))
    for bad in (lo - 1, hi + 1):
        with pytest.raises(ConfigError) as e:
            AlertsSpec.parse(with_value(bad))
        assert e.value.field == f"spec.alerts.{path}"

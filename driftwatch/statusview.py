"""How ``driftwatch status`` prints DriftMonitors: ``-o table|wide|json|yaml``, as kubectl prints objects.

Pure functions of the objects and the time, so the formats are unit-tested without an API server:

* ``table``: one row per feature (a monitor without feature status yet gets one row of dashes), no
  NAMESPACE column unless all namespaces are shown, ``AGE`` in kubectl's human durations;
* ``wide``: also the detector, the feature's reporting pods and how long ago the status was written;
* ``json``/``yaml``: the objects, with ``apiVersion``/``kind`` filled in and ``managedFields`` left out
  (kubectl's defaults); a list is a ``v1 List``, one named monitor is the object itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from driftwatch.vocab.names import GROUP, KIND, VERSION

FORMATS = ("table", "wide", "json", "yaml")
COLUMNS = ["NAME", "PHASE", "FEATURE", "KEY", "STATE", "SCORE", "SEVERITY", "VERDICT", "AGE"]
WIDE_COLUMNS = [*COLUMNS, "DETECTOR", "PODS", "UPDATED"]


def human_duration(seconds: float) -> str:
    """kubectl's ``AGE`` (k8s.io/apimachinery ``duration.HumanDuration``): 45s, 4m10s, 3h20m, 5d2h, 2y3d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any, now: dt.datetime) -> str:
    """``now`` minus an RFC 3339 timestamp, or ``<unknown>`` (kubectl's word) if there is none."""
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        then = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.UTC)
    return human_duration((now - then).total_seconds())


def _score(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _text(value: Any) -> str:
    return str(value) if value not in (None, "") else "-"


def rows(
    monitors: Sequence[Mapping[str, Any]], now: dt.datetime, *, wide: bool = False, namespaces: bool = False
) -> list[list[str]]:
    """One row per feature of each monitor, in :data:`COLUMNS` (``wide``: :data:`WIDE_COLUMNS`) order,
    with the namespace first if ``namespaces``."""
    out = []
    for m in monitors:
        meta, status = m.get("metadata") or {}, m.get("status") or {}
        created = age(meta.get("creationTimestamp"), now)
        for f in status.get("features") or [{}]:
            row = [
                _text(meta.get("name")),
                _text(status.get("phase")),
                _text(f.get("name")),
                _text(f.get("key")),
                _text(f.get("state")),
                _score(f.get("score")),
                _text(f.get("severity")),
                _text(status.get("verdict")),
                created,
            ]
            if wide:
                updated = status.get("lastUpdate")
                row += [_text(f.get("detector")), _text(f.get("pods")), age(updated, now) if updated else "-"]
            out.append([_text(meta.get("namespace")), *row] if namespaces else row)
    return out


def header(*, wide: bool = False, namespaces: bool = False) -> list[str]:
    columns = WIDE_COLUMNS if wide else COLUMNS
    return ["NAMESPACE", *columns] if namespaces else list(columns)


def table(head: Sequence[str], body: Sequence[Sequence[str]], widths: list[int] | None = None) -> str:
    """Columns left-aligned, three spaces apart, as kubectl's tabwriter prints them. ``widths`` (kept
    by the caller across calls) only ever grow, so the rows of a watch stay aligned with the header."""
    if widths is None:
        widths = [0] * len(head)
    for r in [head, *body] if head else body:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))
    lines = [head, *body] if head else list(body)
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines)


def clean(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as kubectl prints it: apiVersion and kind set (a list's items lack them), no
    managedFields."""
    out = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, **obj}
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


def as_list(monitors: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What ``kubectl get -o json`` prints for several objects: a ``v1 List``."""
    return {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": [clean(m) for m in monitors],
    }


def dump(doc: Mapping[str, Any], output: str) -> str:
    """``doc`` as JSON (indented, as kubectl) or YAML (keys in their order)."""
    if output == "json":
        return json.dumps(doc, indent=4)
    # libyaml's dumper when PyYAML has it: several times faster on a few hundred monitors
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text: str = yaml.dump(dict(doc), Dumper=dumper, sort_keys=False, default_flow_style=False)
    return text.rstrip("\n")

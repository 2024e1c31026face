"""What a scan writes: ``status.lastScan``, the bounded ``status.scans``, and its history entry. Pure.

``lastScan`` carries the ``compare --json`` record (``features``) with the time, the result, the two
windows and how much data each had; ``scans`` keeps the last ``spec.scan.history`` results, newest
first, one line each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from driftwatch.history.entries import SCAN, SCAN_FAILED, Entry
from driftwatch.scans.windows import Windows, iso

DRIFT, NO_DRIFT, NOT_ENOUGH_DATA, FAILED = "Drift", "NoDrift", "NotEnoughData", "Failed"
#: ``driftwatch scan``'s exit codes (as ``driftwatch compare``'s)
EXIT_CODES = {NO_DRIFT: 0, DRIFT: 1, NOT_ENOUGH_DATA: 2, FAILED: 3}


@dataclass
class ScanResult:
    time: float
    result: str
    windows: Windows | None = None
    comparison: Mapping[str, Any] = field(default_factory=dict)
    samples: Mapping[str, int] = field(default_factory=dict)
    pods: Mapping[str, int] = field(default_factory=dict)
    reason: str = ""

    @property
    def drifted_features(self) -> list[str]:
        return [str(f["feature"]) for f in self.comparison.get("features", []) if f.get("drifted")]

    @property
    def severity(self) -> str:
        drifted = [f for f in self.comparison.get("features", []) if f.get("drifted")]
        if not drifted:
            return "warning" if self.result == FAILED else "none"
        return "critical" if any(f.get("severity") == "critical" for f in drifted) else "warning"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.result]

    def last_scan(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time": iso(self.time), "result": self.result}
        if self.windows is not None:
            out.update(self.windows.to_dict())
        if self.comparison:
            out["drifted"] = bool(self.comparison.get("drifted"))
            out["share"] = self.comparison.get("share")
            out["features"] = list(self.comparison.get("features", []))
        if self.samples:
            out["samples"] = dict(self.samples)
        if self.pods:
            out["pods"] = dict(self.pods)
        if self.reason:
            out["reason"] = self.reason
        return out

    def summary_line(self) -> dict[str, Any]:
        """One entry of ``status.scans``."""
        out: dict[str, Any] = {"time": iso(self.time), "result": self.result}
        if self.comparison:
            out["share"] = self.comparison.get("share")
            out["drifted"] = ",".join(self.drifted_features)[:200]
        if self.reason:
            out["reason"] = self.reason[:200]
        return out

    def summary(self, namespace: str, name: str) -> str:
        where = f"{namespace}/{name}"
        if self.result == DRIFT:
            names = self.drifted_features
            return f"{where}: scan found drift in {len(names)} feature(s): {', '.join(names[:5])}"
        if self.result == NO_DRIFT:
            return f"{where}: scan found no drift"
        if self.result == NOT_ENOUGH_DATA:
            return f"{where}: scan had not enough data ({self.reason})"
        return f"{where}: scan failed: {self.reason}"

    def history_entry(self, namespace: str, name: str) -> Entry:
        details: dict[str, Any] = {"result": self.result}
        if self.windows is not None:
            details.update(self.windows.to_dict())
        if self.comparison:
            details["share"] = self.comparison.get("share")
            details["features"] = [f for f in self.comparison.get("features", []) if f.get("drifted")]
        if self.reason:
            details["reason"] = self.reason
        return Entry(
            SCAN_FAILED if self.result == FAILED else SCAN,
            self.time,
            self.summary(namespace, name),
            severity=self.severity if self.result in (DRIFT, FAILED) else "none",
            details=details,
        )


def status_patch(result: ScanResult, previous: Sequence[Mapping[str, Any]], keep: int) -> dict[str, Any]:
    """``status`` fields of a merge patch: ``lastScan`` and ``scans`` (``keep`` newest)."""
    scans = [result.summary_line(), *previous][: max(keep, 0)]
    return {"lastScan": result.last_scan(), "scans": scans}

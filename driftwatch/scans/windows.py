"""The two windows of a scan, from ``spec.scan`` and the time it runs. Pure.

* current: the last ``current`` (``1h``) up to now;
* reference: the same window ``offset`` earlier (``7d``), a fixed ``START/END``, or the baseline's
  samples (no window: the sidecars' pinned reference reservoirs).

Samples are kept per time bucket (``reservoir.bucket``, 5 minutes by default), so a window is read as
whole buckets: a bucket counts when its middle lies in the window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from driftwatch.vocab.spec import ScanSpec


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    def buckets(self, width: int) -> tuple[float, float]:
        """[lo, hi): the bucket starts whose middle lies in the window."""
        return self.start - width / 2, self.end - width / 2

    def to_dict(self) -> dict[str, Any]:
        return {"start": iso(self.start), "end": iso(self.end)}


@dataclass(frozen=True)
class Windows:
    current: Window
    #: None: the baseline's samples (pinned reference reservoirs)
    reference: Window | None
    #: baseline | offset | window, as ``spec.scan.reference``
    kind: str
    #: the reference's pinned reservoirs are read (baseline, or a fixed window)
    pinned: bool

    def to_dict(self) -> dict[str, Any]:
        ref: dict[str, Any] = {"kind": self.kind}
        if self.reference is not None:
            ref.update(self.reference.to_dict())
        return {"current": self.current.to_dict(), "reference": ref}


def resolve(scan: ScanSpec, now: float) -> Windows:
    current = Window(now - scan.current_seconds, now)
    ref = scan.reference_window
    if ref.kind == "offset":
        return Windows(current, Window(current.start - ref.offset, current.end - ref.offset), "offset", False)
    if ref.kind == "window":
        return Windows(current, Window(ref.start, ref.end), "window", True)
    return Windows(current, None, "baseline", True)

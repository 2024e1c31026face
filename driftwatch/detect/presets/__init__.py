"""Compatibility presets: older rule sets reproduced exactly, for users migrating to DriftWatch.

Both are ``StreamMonitor``s of their own (not Detectors) because their rules include baseline handling
and recovery. They are numeric-only and deliberately *not* calibrated to ``sensitivity.falseAlarmsPer``:
a migrating user wants the alarms their old system raised, sample for sample. ``bench/detection.py``
shows what that costs in false alarms.

Both are batch-first: a batch is split only at transitions (and into bounded chunks), and every rule is
evaluated with numpy over the chunk. ``tests/unit/detect/test_presets.py`` checks them against a
plain per-sample reference implementation and against every way of splitting the same stream.

Conventions shared by both presets
----------------------------------
* Non-finite values (NaN, +-inf) are dropped before anything else and counted in ``rejected``; they
  do not advance any counter or cadence. "Sample n" below means the n-th *finite* sample (1-based).
* Standard deviations are **population** standard deviations (``ddof=0``, numpy's default), for the
  baseline and for rolling windows alike.
* A zero baseline standard deviation (a constant baseline) makes any value different from the mean
  infinitely far from it (|z| = inf) and a value equal to it |z| = 0: the legacy rules divided by it.
* ``Transition.position`` is the position in the batch as passed in (non-finite values included).
  ``onset_position`` may be negative when the change began in an earlier batch; it then counts raw
  values (accepted and rejected, as the Engine does) back from the batch start: -1 is the last value
  of the previous batch.
* Scores: the legacy rules have no notion of magnitude, so the score is progress towards the rule's
  alarm -- in Stable ``0.5 * progress`` (0.5 would be the alarm), in Drifting
  ``0.5 + 0.5 * (1 - normal_run / recovery_length)``: 1.0 at DRIFT_START, falling towards 0.5 as
  normal samples accumulate. A DRIFT_START event therefore carries score 1.0, a DRIFT_END score 0.0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftwatch.detect.base import StreamMonitor
from driftwatch.detect.registry import MonitorFactory, register_preset

from .sustained_zscore import SustainedZScore
from .zscore_consecutive import ZScoreConsecutive

if TYPE_CHECKING:
    from driftwatch.vocab.spec import FeatureSpec, MonitorSpec

__all__ = ["SustainedZScore", "ZScoreConsecutive"]


def _numeric_only(cls: type[ZScoreConsecutive] | type[SustainedZScore]) -> MonitorFactory:
    """A registry factory: the preset for numeric streams; None (the default monitor) for categorical
    ones -- the legacy rules only ever watched numbers."""

    def make(spec: MonitorSpec, feature: FeatureSpec | None, kind: str) -> StreamMonitor | None:
        return cls.from_spec(spec, feature) if kind == "numeric" else None

    return make


register_preset(ZScoreConsecutive.name, _numeric_only(ZScoreConsecutive), ZScoreConsecutive)
register_preset(SustainedZScore.name, _numeric_only(SustainedZScore), SustainedZScore)

"""States, phases, verdicts and severities, and the two rules that connect them.

* ``State``: one (key, feature) stream in the engine: Initializing -> Stable -> Drifting -> Stable.
* ``Phase``: a whole monitor (``status.phase``, a sidecar's ``/v1/status``): derived from its streams
  by :func:`phase_of` -- any stream drifting makes the monitor drift.
* ``Verdict``: what a rollout gate answers, derived from the phase by :func:`verdict_of`.

They are ``StrEnum``s: each member *is* its string, so JSON, Redis documents and the CRD carry the plain
spelling and comparisons with strings read from them just work.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class State(StrEnum):
    """One stream's state in the engine."""

    INITIALIZING = "Initializing"
    STABLE = "Stable"
    DRIFTING = "Drifting"


class Phase(StrEnum):
    """A monitor's phase: the same three words, said of the whole monitor."""

    INITIALIZING = "Initializing"
    STABLE = "Stable"
    DRIFTING = "Drifting"


class Verdict(StrEnum):
    """A rollout gate's answer."""

    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


class Severity(StrEnum):
    """How far a drifting stream has moved (its score against ``spec.sensitivity``)."""

    NONE = "none"
    WARNING = "warning"
    CRITICAL = "critical"


class Condition(StrEnum):
    """The condition types the operator owns in ``status.conditions`` (in display order)."""

    READY = "Ready"
    SIDECARS_REPORTING = "SidecarsReporting"
    REDIS_AVAILABLE = "RedisAvailable"
    DRIFTING = "Drifting"


def phase_of(states: Iterable[str | None]) -> Phase:
    """A monitor's phase from its streams' states: Drifting if any drifts, else Stable if any is
    Stable (a stream still learning does not hold the monitor back), else Initializing.

    >>> phase_of(["Stable", "Initializing"]), phase_of([])
    (<Phase.STABLE: 'Stable'>, <Phase.INITIALIZING: 'Initializing'>)
    """
    seen = set(states)
    if State.DRIFTING in seen:
        return Phase.DRIFTING
    if State.STABLE in seen:
        return Phase.STABLE
    return Phase.INITIALIZING


def verdict_of(phase: str) -> Verdict:
    """The gate's verdict for a phase: Stable passes, Drifting fails, anything else cannot vouch."""
    if phase == Phase.STABLE:
        return Verdict.PASS
    if phase == Phase.DRIFTING:
        return Verdict.FAIL
    return Verdict.INCONCLUSIVE

"""The rollout verdict of a DriftMonitor's status: one pure function for every gate.

``driftwatch gate`` (the CLI, an exit code) and the operator's ``/v1/gate`` endpoint (an HTTP status)
both answer from here, so they can never disagree. Imports nothing beyond the standard library: the CLI
must not pay for aiohttp or kopf.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from driftwatch.vocab.states import Verdict


def verdict_of_status(
    status: Mapping[str, Any],
    generation: int | None = None,
    now: dt.datetime | None = None,
    max_age: float | None = None,
) -> tuple[Verdict, str]:
    """(verdict, reason) for a monitor's status; the reason is "" unless the verdict was downgraded.

    A missing or unknown verdict is Inconclusive, and so is a status written for an older spec
    (observedGeneration behind ``generation``). With ``now`` and ``max_age`` the status must also be
    fresh: older than ``max_age`` seconds, or a decisive verdict without ``lastUpdate``, is Inconclusive.
    Under shadow mode (``status.gate.mode`` of a status for the current spec) the gate always passes:
    an age downgrade is only the reason.
    """
    verdict, reason = _checked(status, generation, now, max_age)
    gate = status.get("gate")
    current = generation is None or status.get("observedGeneration") in (None, generation)
    if isinstance(gate, Mapping) and gate.get("mode") == "shadow" and current and verdict != Verdict.PASS:
        return Verdict.PASS, f"shadow mode (the gate passes): {reason or verdict}"
    return verdict, reason


def _checked(
    status: Mapping[str, Any],
    generation: int | None,
    now: dt.datetime | None,
    max_age: float | None,
) -> tuple[Verdict, str]:
    given = str(status.get("verdict") or "")
    verdict = Verdict(given) if given in set(Verdict) else Verdict.INCONCLUSIVE
    reason = ""
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        verdict, reason = (
            Verdict.INCONCLUSIVE,
            f"status is for generation {observed}, the spec is at {generation}",
        )
    if now is not None and max_age is not None:
        last = status.get("lastUpdate")
        if last:
            age = (now - dt.datetime.fromisoformat(str(last).replace("Z", "+00:00"))).total_seconds()
            if age > max_age:
                verdict, reason = (
                    Verdict.INCONCLUSIVE,
                    f"status is {age:.0f}s old (operator or sidecars not reporting)",
                )
        elif verdict != Verdict.INCONCLUSIVE and not reason:
            verdict, reason = Verdict.INCONCLUSIVE, "no status yet"
    return verdict, reason

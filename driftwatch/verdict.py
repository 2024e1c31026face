"""The rollout verdict of a DriftMonitor's status: one pure function for every gate.

``driftwatch gate`` (the CLI, an exit code) and the operator's ``/v1/gate`` endpoint (an HTTP status)
both answer from here, so they can never disagree. Imports nothing beyond the standard library: the CLI
must not pay for aiohttp or kopf.

A reader may name the canary it asks about (``?canary=HASH``, ``driftwatch gate --canary HASH``: the
new revision's pod template hash, which Argo Rollouts passes as ``podTemplateHashValue: Latest``). A
``compare: stable-pods`` verdict is about the canary group of its round (``status.gate.canaryHash``),
and right after a new revision starts the status still holds the verdict on the *previous* canary until
the operator's next round groups the new pods: without a name, a reader takes that old Pass for the new
revision's (:func:`canary_scope`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from driftwatch.vocab.states import Verdict

#: a pod template hash is a label value: at most 63 characters, alphanumeric at both ends
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def canary_hash(text: str, field: str = "canary") -> str:
    """``text`` if it can be a pod template hash (a label value), else ValueError naming ``field``.

    Empty is an error, not "any canary": an Argo argument that resolved to nothing must not quietly
    turn the check off."""
    if not _LABEL_VALUE.match(text):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise ValueError(
            f"{field}: must be a pod template hash (a label value: 1-63 letters, digits, '-', '_' or '.', "
            f"alphanumeric at both ends), got {shown!r}"
        )
    return text


def canary_scope(status: Mapping[str, Any], canary: str) -> str:
    """Why ``status``'s verdict does not speak for the canary pods of template hash ``canary`` ("" when
    it does).

    Only ``compare: stable-pods`` verdicts are about a canary: ``status.gate.canaryHash`` names the
    group the round compared ("" or absent: none, e.g. a single pod template, Redis unreadable). A
    ``compare: baseline`` verdict is the monitor's phase over all its pods and is not scoped: it
    speaks for any canary (or none), so the name is ignored.
    """
    gate = status.get("gate")
    if not isinstance(gate, Mapping) or gate.get("compare") != "stable-pods":
        return ""
    about = str(gate.get("canaryHash") or "")
    if about == canary:
        return ""
    what = f"canary pods {about}" if about else "no canary pods"
    return f"the verdict is about {what}, not {canary} (not judged yet)"


def verdict_of_status(
    status: Mapping[str, Any],
    generation: int | None = None,
    now: dt.datetime | None = None,
    max_age: float | None = None,
    canary: str | None = None,
) -> tuple[Verdict, str]:
    """(verdict, reason) for a monitor's status; the reason is "" unless the verdict was downgraded.

    A missing or unknown verdict is Inconclusive, and so is a status written for an older spec
    (observedGeneration behind ``generation``). With ``now`` and ``max_age`` the status must also be
    fresh: older than ``max_age`` seconds, or a decisive verdict without ``lastUpdate``, is Inconclusive.
    With ``canary`` (a pod template hash) a ``compare: stable-pods`` verdict about other canary pods is
    Inconclusive (:func:`canary_scope`). Under shadow mode (``status.gate.mode`` of a status for the
    current spec) the gate always passes: a downgrade is only the reason.
    """
    verdict, reason = _checked(status, generation, now, max_age)
    if canary is not None and not reason:
        scope = canary_scope(status, canary)
        if scope:
            verdict, reason = Verdict.INCONCLUSIVE, scope
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

"""A reader names the canary a verdict must be about: the scoping function, the round that records the
canary it judged (``status.gate.canaryHash``), the merge patch that removes a stale one, and the CLI.

The bug this guards against: right after a new rollout revision starts, ``status.verdict`` still holds
the verdict on the *previous* canary until the operator's next round groups the new Pods; the Job of
revision v3 read v2's Pass and exited 0. Named, that verdict is Inconclusive for v3.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from driftwatch import gate
from driftwatch.operator import pod_groups, rollout_gate, status_rules
from driftwatch.operator.driftmonitor import Monitor, Selector
from driftwatch.operator.options import OperatorOptions
from driftwatch.operator.status_round import Round, status_patch
from driftwatch.operator.status_rules import PodInfo
from driftwatch.verdict import canary_hash, canary_scope, verdict_of_status
from driftwatch.vocab.states import Verdict

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def status(
    verdict: str = "Pass", compare: str = "stable-pods", about: str | None = "v2", **gate: Any
) -> dict:
    g: dict[str, Any] = {"compare": compare, "mode": "enforce", "verdict": verdict, "message": "why", **gate}
    if about is not None:
        g["canaryHash"] = about
    return {
        "verdict": verdict,
        "observedGeneration": 3,
        "lastUpdate": "2026-01-01T11:59:55Z",
        "gate": g,
    }


def test_a_verdict_about_the_named_canary_stands() -> None:
    for v in ("Pass", "Fail", "Inconclusive"):
        assert canary_scope(status(v), "v2") == ""
        assert verdict_of_status(status(v), 3, NOW, 60, canary="v2") == (Verdict(v), "")


@pytest.mark.parametrize("verdict", ["Pass", "Fail"])
def test_a_verdict_about_the_previous_canary_is_inconclusive(verdict: str) -> None:
    """v3's reader never takes v2's Pass -- nor v2's Fail: that one is not about v3 either."""
    got, reason = verdict_of_status(status(verdict), 3, NOW, 60, canary="v3")
    assert got == Verdict.INCONCLUSIVE
    assert reason == "the verdict is about canary pods v2, not v3 (not judged yet)"
    # the CLI's call (no age check) agrees
    assert verdict_of_status(status(verdict), 3, canary="v3")[0] == Verdict.INCONCLUSIVE


def test_no_canary_judged_yet_is_said_so() -> None:
    """One pod template (the round saw no canary group), Redis unreadable, or a status from before
    canaryHash existed: nothing was judged about the named canary."""
    got, reason = verdict_of_status(status("Inconclusive", about=None), 3, NOW, 60, canary="v3")
    assert got == Verdict.INCONCLUSIVE
    assert reason == "the verdict is about no canary pods, not v3 (not judged yet)"
    assert verdict_of_status(status("Pass", about=""), 3, NOW, 60, canary="v3")[0] == Verdict.INCONCLUSIVE


def test_baseline_verdicts_are_not_scoped() -> None:
    """compare: baseline is the monitor's phase over all its pods, about no canary in particular."""
    st = status("Pass", compare="baseline", about=None)
    assert canary_scope(st, "v3") == ""
    assert verdict_of_status(st, 3, NOW, 60, canary="v3") == (Verdict.PASS, "")
    assert verdict_of_status({"verdict": "Fail"}, canary="v3") == (Verdict.FAIL, "")  # no gate at all


def test_without_a_name_nothing_changes() -> None:
    assert verdict_of_status(status("Pass"), 3, NOW, 60) == (Verdict.PASS, "")


def test_older_downgrades_keep_their_reason_and_shadow_still_passes() -> None:
    got, reason = verdict_of_status(status("Pass"), 4, NOW, 60, canary="v3")
    assert (got, reason) == (Verdict.INCONCLUSIVE, "status is for generation 3, the spec is at 4")
    shadow = status("Fail", mode="shadow")
    shadow["verdict"] = "Pass"
    got, reason = verdict_of_status(shadow, 3, NOW, 60, canary="v3")
    assert got == Verdict.PASS  # shadow never blocks
    assert (
        reason
        == "shadow mode (the gate passes): the verdict is about canary pods v2, not v3 (not judged yet)"
    )


@pytest.mark.parametrize("bad", ["", " v3", "v3/x", "-v3", "v3-", "a" * 64, "v3?always200=true", "ünicode"])
def test_a_canary_hash_is_a_label_value(bad: str) -> None:
    with pytest.raises(ValueError, match=r"^canary: must be a pod template hash"):
        canary_hash(bad)


def test_good_canary_hashes() -> None:
    for good in ("5d4f8c7b9", "7c9f6b7d5d", "a", "a.b_c-d", "a" * 63):
        assert canary_hash(good) == good


# -- the round records which canary its verdict is about ------------------------------------------------

SELECTOR_DOC = {"matchLabels": {"app": "web"}}


def monitor(**gate_doc: Any) -> Monitor:
    body = {
        "metadata": {"name": "web", "namespace": "shop", "uid": "u", "generation": 3},
        "spec": {
            "selector": SELECTOR_DOC,
            "features": [{"name": "latency_ms", "type": "numeric"}],
            "gate": gate_doc,
        },
    }
    return Monitor.from_body(body, OperatorOptions())


def pod(name: str, template: str, created: str) -> PodInfo:
    return PodInfo(name, {"app": "web", "rollouts-pod-template-hash": template}, True, True, created)


def test_the_round_names_its_canary_group() -> None:
    pods = [pod("web-v2-a", "v2", "2026-01-01T00:00:00Z"), pod("web-v3-a", "v3", "2026-01-01T06:00:00Z")]
    assert pod_groups.group(pods, Selector.parse(SELECTOR_DOC)).canary is not None
    d = rollout_gate.decide(monitor(compare="stable-pods"), "Stable", [], None, [], pods)
    assert d.verdict == Verdict.INCONCLUSIVE  # no samples yet
    assert d.fields["canaryHash"] == "v3"
    assert d.fields["canary"]["hash"] == "v3"
    # one template, Redis unreadable, or compare: baseline: about no canary
    one = rollout_gate.decide(monitor(compare="stable-pods"), "Stable", [], None, [], pods[:1])
    down = rollout_gate.decide(monitor(compare="stable-pods"), "Stable", [], "ConnectionError", [], pods)
    base = rollout_gate.decide(monitor(), "Stable", [], None, [], pods)
    for d in (one, down, base):
        assert "canaryHash" not in d.fields


def test_the_status_patch_removes_an_earlier_rounds_canary() -> None:
    """A merge patch keeps what it does not name: a round without a canary group nulls the detail keys,
    or ``canaryHash`` (and the groups, the counts) of an earlier round would outlive its verdict."""
    body = {
        "metadata": {"name": "web", "namespace": "shop", "uid": "u", "generation": 3, "resourceVersion": "7"},
        "spec": {"selector": SELECTOR_DOC},
        "status": status("Pass", canary={"hash": "v2"}, stable={"hash": "v1"}, needed=200, features=[]),
    }
    m = monitor(compare="stable-pods")
    one = rollout_gate.decide(m, "Stable", [], None, [], [pod("web-v2-a", "v2", "2026-01-01T00:00:00Z")])
    outcome = rollout_gate.apply(
        status_rules.compute(m, [], 1, status_rules.PodView(1, 1), None, {}), one, body["status"]
    )
    patch = status_patch(body, Round(m, outcome.fields, [], [], {}), NOW)["status"]["gate"]
    for key in rollout_gate.DETAIL_KEYS:
        assert patch[key] is None, key
    assert patch["verdict"] == Verdict.INCONCLUSIVE
    # the round's own fields (what the cache claims and the next round compares with) carry no nulls
    assert set(outcome.fields["gate"]) == {"compare", "mode", "failOn", "verdict", "message"}
    # a round with a canary group writes its details as they are
    two = rollout_gate.decide(
        m,
        "Stable",
        [],
        None,
        [],
        [pod("web-v2-a", "v2", "2026-01-01T00:00:00Z"), pod("web-v3-a", "v3", "2026-01-01T06:00:00Z")],
    )
    patch = status_patch(body, Round(m, {"gate": two.fields}, [], [], {}), NOW)["status"]["gate"]
    assert patch["canaryHash"] == "v3"
    assert patch["stable"]["hash"] == "v2"


# -- driftwatch gate --canary (the job provider's reader) -------------------------------------------------


def obj(st: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "generation": 3}, "status": st}


def test_gate_cli_reader_scopes_to_the_named_canary() -> None:
    assert gate.verdict_of_monitor(obj(status("Pass")), "v2")[0] == Verdict.PASS
    verdict, _, why = gate.verdict_of_monitor(obj(status("Pass")), "v3")
    assert verdict == Verdict.INCONCLUSIVE
    assert why == "the verdict is about canary pods v2, not v3 (not judged yet)"
    assert gate.EXIT[verdict] == 2  # the Job keeps waiting (--wait), then fails: never exit 0
    assert gate.verdict_of_monitor(obj(status("Pass")))[0] == Verdict.PASS  # unnamed: as before


def test_gate_cli_canary_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        gate.main(["--help"])
    assert "--canary HASH" in capsys.readouterr().out
    for bad in ("", "not/a/hash"):
        with pytest.raises(SystemExit):
            gate.main(["shop/web", "--canary", bad])
        assert "--canary: must be a pod template hash" in capsys.readouterr().err

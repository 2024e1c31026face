"""Leader election's rules (``election.decide``, the Lease spec it writes), what a new leader hands back
to kopf (``leadership.unfinished``), and the reconcile handlers limited to the leader. The election
against a real API server, and two operator processes failing over: tests/reliability/test_rel_leader.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import kopf
import pytest

from driftwatch.operator import handlers, leadership
from driftwatch.operator.context import OperatorContext
from driftwatch.operator.election import Record, Timing, decide, lease_spec, server_age, written_at
from driftwatch.operator.options import OperatorOptions, default_identity

HELD = Record(holder="a", duration=15, renew_time="2026-01-01T00:00:00.000000Z", transitions=3)


@pytest.mark.parametrize(
    ("identity", "record", "unchanged_for", "action"),
    [
        ("a", None, 0.0, "create"),  # no Lease yet
        ("a", HELD, 0.0, "renew"),  # ours
        ("a", HELD, 100.0, "renew"),  # ours, even if we were slow
        ("b", HELD, 0.0, "follow"),  # another's, fresh
        ("b", HELD, 14.9, "follow"),  # another's, not expired on our clock
        ("b", HELD, 15.0, "take"),  # another's, unchanged for its whole duration: its holder is gone
        ("b", Record("", 1, "", 3), 0.0, "take"),  # released on an orderly stop
    ],
)
def test_decide(identity: str, record: Record | None, unchanged_for: float, action: str) -> None:
    assert decide(identity, record, unchanged_for) == action


def lease_written(*times: str) -> dict[str, Any]:
    fields = [{"manager": f"m{i}", "operation": "Update", "time": t} for i, t in enumerate(times)]
    return {"metadata": {"managedFields": fields}, "spec": {"holderIdentity": "a"}}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_server_age_is_the_api_servers_own_measure_less_its_truncation() -> None:
    """A replica started after the Lease expired judges it by the API server's clock (the read's Date
    minus the newest managedFields time), not only by how long it has watched the record itself."""
    lease = lease_written("2026-01-01T00:00:00Z", "2026-01-01T00:00:20Z")
    assert written_at(lease) == at("2026-01-01T00:00:20Z")  # the newest write, whoever made it
    assert server_age(lease, at("2026-01-01T00:00:36Z")) == 15.0  # 16 s apart, whole seconds: >= 15
    assert decide("b", HELD, server_age(lease, at("2026-01-01T00:00:36Z"))) == "take"
    assert decide("b", HELD, server_age(lease, at("2026-01-01T00:00:35Z"))) == "follow"
    # unknown or backwards: no claim at all (the replica's own clock decides)
    assert server_age(lease, None) == 0.0
    assert server_age(lease_written(), at("2026-01-01T00:00:36Z")) == 0.0
    assert server_age(lease_written("garbage"), at("2026-01-01T00:00:36Z")) == 0.0
    assert server_age(lease, at("2026-01-01T00:00:10Z")) == 0.0
    assert server_age(lease_written("2026-01-01T00:00:20"), at("2026-01-01T00:00:36Z")) == 0.0  # no zone


def test_timing_keeps_client_go_proportions() -> None:
    assert Timing.of(15) == Timing(15, 10, 2)
    t = Timing.of(3)
    assert t.retry < t.renew_deadline < t.lease  # a holder steps down before anybody may take over


def test_lease_spec_counts_transitions_on_a_take_only() -> None:
    taken = lease_spec("b", 15, HELD, "take")
    assert taken["holderIdentity"] == "b"
    assert taken["leaseDurationSeconds"] == 15
    assert taken["leaseTransitions"] == 4
    assert taken["acquireTime"] == taken["renewTime"]
    assert lease_spec("a", 15, None, "create")["leaseTransitions"] == 0
    renewed = lease_spec("a", 15, HELD, "renew")
    assert "acquireTime" not in renewed
    assert "leaseTransitions" not in renewed
    assert renewed["renewTime"].endswith("Z")
    assert "." in renewed["renewTime"]


def test_identities_differ_per_process_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "driftwatch-operator-7d9c-x2k4p")
    a, b = default_identity(), default_identity()
    assert a.startswith("driftwatch-operator-7d9c-x2k4p_")
    assert a != b  # a restarted process never renews its predecessor's lease as its own


def body(generation: int = 2, ready_generation: int | None = 2, **annotations: str) -> dict[str, Any]:
    conditions = (
        [] if ready_generation is None else [{"type": "Ready", "observedGeneration": ready_generation}]
    )
    return {
        "metadata": {"name": "m", "namespace": "shop", "generation": generation, "annotations": annotations},
        "status": {"conditions": conditions},
    }


def test_unfinished_monitors_are_the_ones_kopf_may_not_have_handled() -> None:
    assert not leadership.unfinished(body())
    assert not leadership.unfinished(
        body(**{"driftwatch.io/last-handled-configuration": "{}", "driftwatch.io/kopf-managed": "yes"})
    )
    assert leadership.unfinished(body(ready_generation=None))  # never reconciled
    assert leadership.unfinished(body(generation=3))  # a spec change not reconciled yet
    assert leadership.unfinished(body(**{"driftwatch.io/reconcile_children": '{"retries":1}'}))  # retrying
    deleting = body(ready_generation=None)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not leadership.unfinished(deleting)


def test_only_the_leader_reconciles() -> None:
    """The reconcile handlers carry a ``when`` filter on the context's leadership: kopf checks it before
    anything else and, when it is false, neither runs the handler nor stores its state on the object."""
    ctx = OperatorContext(OperatorOptions())
    registry = kopf.OperatorRegistry()
    handlers.register(registry, ctx)
    changing = list(registry._changing.get_all_handlers())
    assert {str(h.id).split("/")[0] for h in changing} == {leadership.RECONCILE_ID}
    for h in changing:
        assert h.when is not None
        ctx.leading = False
        assert not h.when()
        ctx.leading = True
        assert h.when()
    # every other handler runs on every replica: the cache the webhook answers from, the pods index
    others = [*registry._watching.get_all_handlers(), *registry._indexing.get_all_handlers()]
    assert others
    assert all(h.when is None for h in others)

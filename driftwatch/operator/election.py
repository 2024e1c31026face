"""Leader election on a ``coordination.k8s.io/v1`` Lease, the way client-go's ``leaderelection`` does it.

Every operator replica runs an elector on the same Lease (``driftwatch-operator-leader`` in the
operator's namespace). The holder renews it every ``retry`` seconds; the others read it as often and
take it over once its record has not changed for its ``leaseDurationSeconds``. A holder that could not
renew for ``renew_deadline`` (shorter than the lease) steps down on its own, so it has stopped before
anybody else may start. Writes are optimistic (``resourceVersion``): of two replicas racing for an
expired lease, one gets a 409 and stays a follower.

Expiry is judged by how long the record has been unchanged, never from the ``renewTime`` another node
wrote, so clocks that disagree between nodes do not matter. Two measures, the longer counts:

* this replica's monotonic clock from the moment it first saw the current record (client-go's rule);
* the API server's clock: its ``Date`` when it answered the read minus its own record of the Lease's
  last write (the newest ``managedFields`` time), less a second for the truncation of both to whole
  seconds (``server_age``). Both times come from the API server, so nodes' clocks still do not matter.

The first alone makes a replica that starts after the Lease expired -- the only operator restarted, a
pod rescheduled -- watch the dead holder's record for a whole lease before it leads (client-go does);
the second lets it lead at its first round. Several API servers behind one address must agree on the
time within the lease's margin over the renew deadline (5 s of 15 s), as their own leases assume.

Why our own and not kopf's peering: kopf pauses *every* watch of a paused operator, the ones that feed
the webhook's monitor cache included, and freezes all replicas of equal priority (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from driftwatch.kube.client import Kube, KubeError

log = logging.getLogger("driftwatch.operator")

Action = Literal["create", "take", "renew", "follow"]
Callback = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Timing:
    """Seconds: how long a lease is valid, how long its holder keeps trying to renew before it steps
    down, and how often every replica tries (client-go's defaults: 15, 10, 2)."""

    lease: float = 15.0
    renew_deadline: float = 10.0
    retry: float = 2.0

    @classmethod
    def of(cls, lease: float) -> Timing:
        """Renew deadline and retry period in client-go's proportions to the lease."""
        return cls(lease, lease * 2 / 3, max(0.2, lease / 7.5))


@dataclass(frozen=True)
class Record:
    """What of a Lease's spec the election reads."""

    holder: str
    duration: float
    renew_time: str
    transitions: int

    @classmethod
    def of(cls, lease: Mapping[str, Any]) -> Record:
        spec = lease.get("spec") or {}
        return cls(
            str(spec.get("holderIdentity") or ""),
            float(spec.get("leaseDurationSeconds") or 0),
            str(spec.get("renewTime") or ""),
            int(spec.get("leaseTransitions") or 0),
        )


def decide(identity: str, record: Record | None, unchanged_for: float) -> Action:
    """What ``identity`` does with the Lease it read: ``record`` None means there is none yet;
    ``unchanged_for`` is how long (on our clock) the record has looked exactly like this."""
    if record is None:
        return "create"
    if record.holder == identity:
        return "renew"
    if not record.holder or unchanged_for >= record.duration:
        return "take"  # released, or its holder stopped renewing
    return "follow"


def written_at(lease: Mapping[str, Any]) -> dt.datetime | None:
    """When the API server last recorded a write to ``lease``: the newest of its ``managedFields`` times
    (whole seconds, truncated; a manager's time moves whenever a value it owns changes, every renewal
    included). None if it has none."""
    times: list[dt.datetime] = []
    for entry in (lease.get("metadata") or {}).get("managedFields") or []:
        try:
            times.append(dt.datetime.fromisoformat(str(entry["time"])))
        except (KeyError, TypeError, ValueError):
            continue
    return max(times, default=None)


def server_age(lease: Mapping[str, Any], server_now: dt.datetime | None) -> float:
    """How long, at least, ``lease`` has been unchanged by the API server's clock: ``server_now`` (the
    read's ``Date``) minus its last write (``written_at``), less 1 s for the truncation of both to whole
    seconds. 0 when either is unknown or the clocks run backwards."""
    written = written_at(lease)
    if server_now is None or written is None or written.tzinfo is None or server_now.tzinfo is None:
        return 0.0
    return max(0.0, (server_now - written).total_seconds() - 1.0)


def micro_time(at: dt.datetime | None = None) -> str:
    """A Lease's MicroTime: RFC 3339 with microseconds, UTC."""
    return (at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_spec(
    identity: str, lease_seconds: float, previous: Record | None, action: Action
) -> dict[str, Any]:
    """The spec to write for ``action`` (create / take / renew)."""
    now = micro_time()
    spec: dict[str, Any] = {
        "holderIdentity": identity,
        "leaseDurationSeconds": max(1, round(lease_seconds)),
        "renewTime": now,
    }
    if action in ("create", "take"):
        spec["acquireTime"] = now
        spec["leaseTransitions"] = (previous.transitions + 1) if previous and previous.holder else 0
    return spec


class LeaseElector:
    """One replica's side of the election. ``on_lead`` runs when it becomes the leader, ``on_follow``
    when it stops being one (steps down or stops); neither runs twice in a row."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        timing: Timing,
        on_lead: Callback,
        on_follow: Callback,
    ) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.timing = timing
        self._on_lead, self._on_follow = on_lead, on_follow
        self.leading = False
        #: the record last read and when (monotonic) it was first seen like that
        self._seen: tuple[Record, float] | None = None
        #: when (monotonic) this replica last held the lease for certain
        self._held_at = 0.0

    async def attempt(self) -> bool | None:
        """One read, and a write if the lease is ours to create, take or renew. True: we hold it;
        False: another replica does; None: could not tell (API error, lost a write race)."""
        lease, server_now = await self.kube.get_dated("Lease", self.namespace, self.name)
        now = time.monotonic()
        record = Record.of(lease) if lease is not None else None
        if record is not None and (self._seen is None or self._seen[0] != record):
            self._seen = (record, now)
        unchanged_for = 0.0
        if lease is not None and self._seen is not None:
            unchanged_for = max(now - self._seen[1], server_age(lease, server_now))
        action = decide(self.identity, record, unchanged_for)
        if action == "follow":
            return False
        spec = lease_spec(self.identity, self.timing.lease, record, action)
        try:
            if lease is None:
                await self.kube.create(
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace},
                        "spec": spec,
                    }
                )
            else:
                kept = {k: v for k, v in (lease.get("spec") or {}).items() if k not in spec}
                await self.kube.replace({**lease, "spec": {**kept, **spec}})
        except KubeError as e:
            if e.status == 409:  # another replica wrote first: read again next time
                return None
            raise
        if action == "take" and record is not None:
            log.info("leader election: took %s over from %s", self.name, record.holder or "nobody")
        return True

    async def step(self) -> None:
        """One round of the election, and the callbacks if leadership changed."""
        try:
            held = await asyncio.wait_for(self.attempt(), timeout=max(self.timing.retry, 1.0) * 2)
        except Exception as e:  # the API server is unreachable or slow: keep what we have, for a while
            log.warning("leader election: %s/%s: %s", self.namespace, self.name, e)
            held = None
        now = time.monotonic()
        if held:
            self._held_at = now
            if not self.leading:
                self.leading = True
                log.info("leader election: %s leads (Lease %s/%s)", self.identity, self.namespace, self.name)
                await self._on_lead()
        elif self.leading and (held is False or now - self._held_at > self.timing.renew_deadline):
            log.warning(
                "leader election: %s steps down (%s)",
                self.identity,
                "another replica holds the lease" if held is False else "could not renew in time",
            )
            self.leading = False
            await self._on_follow()

    async def run(self) -> None:
        """Rounds every ``retry`` seconds until cancelled (the first round is the caller's ``step``)."""
        while True:
            await asyncio.sleep(self.timing.retry)
            await self.step()

    async def release(self) -> None:
        """Stop leading and hand the lease back (holder cleared), so another replica takes it at its
        next round instead of waiting out the lease. Called on an orderly stop."""
        if not self.leading:
            return
        self.leading = False
        await self._on_follow()
        try:
            lease = await self.kube.get("Lease", self.namespace, self.name)
            if lease is not None and Record.of(lease).holder == self.identity:
                spec = {**(lease.get("spec") or {}), "holderIdentity": "", "leaseDurationSeconds": 1}
                await self.kube.replace({**lease, "spec": spec})
                log.info("leader election: released %s/%s", self.namespace, self.name)
        except Exception as e:  # it expires on its own
            log.warning("leader election: releasing %s/%s failed: %s", self.namespace, self.name, e)

"""The Redis key layout: every key DriftWatch reads or writes, named in one place.

A monitor's keys share the prefix ``P = {keyPrefix}:{<namespace>:<monitor>}`` -- the braces are
literal: a Redis Cluster hash tag, so every key of one monitor lives in one hash slot and the sidecar's
multi-key ``MULTI`` (summary + pod set + notify) stays atomic on a cluster (keyPrefix defaults to
``driftwatch``; namespaces and DriftMonitor names never contain ``:``, ``{`` or ``}``). The sidecars
write, the operator reads and, when a monitor is deleted, removes ``P:*``. ``LAYOUT`` is the table of
docs/redis-keys.md; a test keeps the two equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_KEY_PREFIX = "driftwatch"
#: the consumer group sidecars read ``P:ingest`` with (each pod is one consumer, named for the pod)
INGEST_GROUP = "driftwatch"


def monitor_prefix(key_prefix: str, namespace: str, monitor: str) -> str:
    """``P`` for one monitor; ``{namespace:monitor}`` is its hash tag.

    >>> monitor_prefix("driftwatch", "shop", "payments")
    'driftwatch:{shop:payments}'
    """
    return f"{key_prefix}:{{{namespace}:{monitor}}}"


def glob_escape(text: str) -> str:
    """``text`` with Redis glob metacharacters escaped, for SCAN MATCH / PSUBSCRIBE patterns."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


@dataclass(frozen=True)
class MonitorKeys:
    """The keys of one monitor, from its prefix ``P``."""

    prefix: str

    @classmethod
    def of(cls, key_prefix: str, namespace: str, monitor: str) -> MonitorKeys:
        return cls(monitor_prefix(key_prefix, namespace, monitor))

    def checkpoint(self, pod: str) -> str:
        return f"{self.prefix}:checkpoint:{pod}"

    def summary(self, pod: str) -> str:
        return f"{self.prefix}:summary:{pod}"

    @property
    def pods(self) -> str:
        return f"{self.prefix}:pods"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def ingest(self) -> str:
        return f"{self.prefix}:ingest"

    @property
    def ingest_dead(self) -> str:
        """Dead letters of ``P:ingest``: entries no sidecar could take (poison, too large, redelivered)."""
        return f"{self.prefix}:ingest:dead"

    @property
    def checkpoints(self) -> str:
        """Which pods have a checkpoint, and when: a replacement pod starts from the newest of them."""
        return f"{self.prefix}:checkpoints"

    @property
    def notify(self) -> str:
        """A Pub/Sub channel, not a key: nothing is stored under it."""
        return f"{self.prefix}:notify"

    # --- scans (docs/redis-keys.md, "Sample reservoirs"), history, commands ------------------------------

    def reservoir(self, bucket: int, pod: str) -> str:
        """One pod's reservoirs of one time bucket (``bucket``: its start, epoch seconds)."""
        return f"{self.prefix}:reservoir:{bucket}:{pod}"

    @property
    def reservoirs(self) -> str:
        """Index of ``reservoir`` keys: member ``{bucket}:{pod}``, score the bucket's start."""
        return f"{self.prefix}:reservoirs"

    def reference(self, pod: str) -> str:
        """One pod's pinned reference reservoirs (the baseline's samples, or a fixed window's)."""
        return f"{self.prefix}:reference:{pod}"

    @property
    def references(self) -> str:
        """Index of ``reference`` keys: member pod, score its last write."""
        return f"{self.prefix}:references"

    @property
    def history(self) -> str:
        """The monitor's history: transitions, scans, alerts, acknowledgements (monitor-wide)."""
        return f"{self.prefix}:history"

    @property
    def commands(self) -> str:
        """Commands to every sidecar of the monitor (``driftwatch ack --adopt``)."""
        return f"{self.prefix}:commands"

    @staticmethod
    def reservoir_member(bucket: int, pod: str) -> str:
        return f"{bucket}:{pod}"

    @property
    def every_key(self) -> str:
        """SCAN pattern matching every key of the monitor (and of no other monitor)."""
        return f"{glob_escape(self.prefix)}:*"


def notify_pattern(key_prefix: str) -> str:
    """The one PSUBSCRIBE pattern that hears every monitor's ``P:notify`` under ``key_prefix``."""
    return f"{glob_escape(key_prefix)}:*:notify"


def parse_key_owner(key: str, key_prefix: str) -> tuple[str, str] | None:
    """The (namespace, monitor) whose ``P`` starts ``key``; None for a key of anything else.

    >>> parse_key_owner("driftwatch:{shop:payments}:summary:pod-1", "driftwatch")
    ('shop', 'payments')
    """
    head = f"{key_prefix}:{{"
    if not key.startswith(head):
        return None
    tag, sep, _ = key[len(head) :].partition("}")
    parts = tag.split(":")
    if not sep or len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def parse_notify_channel(channel: str, key_prefix: str) -> tuple[str, str] | None:
    """``P:notify`` -> (namespace, monitor); None for anything else.

    >>> parse_notify_channel("driftwatch:{shop:payments}:notify", "driftwatch")
    ('shop', 'payments')
    """
    owner = parse_key_owner(channel, key_prefix)
    if owner is None or channel != f"{monitor_prefix(key_prefix, *owner)}:notify":
        return None
    return owner


@dataclass(frozen=True)
class KeyDoc:
    """One row of docs/redis-keys.md: the key (``P``-relative), its Redis type, who writes it."""

    key: str
    type: str
    writer: str


LAYOUT: tuple[KeyDoc, ...] = (
    KeyDoc("P:checkpoint:{pod}", "string (JSON), TTL 7 d (refreshed by every checkpoint)", "sidecar"),
    KeyDoc("P:summary:{pod}", "string (JSON), TTL 3 x `state.publishInterval`", "sidecar"),
    KeyDoc(
        "P:pods",
        "sorted set: member pod, score = last publish time (epoch s); TTL 7 d, refreshed by every publish",
        "sidecar",
    ),
    KeyDoc("P:events", "stream, `MAXLEN ~ 10000`, TTL 7 d refreshed by every write", "sidecar"),
    KeyDoc(
        "P:ingest",
        "stream + consumer group `driftwatch`; acknowledged history trimmed and TTL 7 d, kept by the readers",
        "the app",
    ),
    KeyDoc("P:notify", "Pub/Sub channel, not a key", "sidecar"),
    KeyDoc("P:ingest:dead", "stream, `MAXLEN ~ 1000`, TTL 7 d refreshed by every write", "sidecar"),
    KeyDoc("P:checkpoints", "sorted set: member pod, score = checkpoint time (epoch s); TTL 7 d", "sidecar"),
    KeyDoc("P:reservoir:{bucket}:{pod}", "hash: field stream, value reservoir; TTL `retention`", "sidecar"),
    KeyDoc(
        "P:reservoirs",
        "sorted set: member `{bucket}:{pod}`, score = bucket start; TTL `retention`",
        "sidecar",
    ),
    KeyDoc("P:reference:{pod}", "hash: field stream, value reservoir; TTL `retention`", "sidecar"),
    KeyDoc("P:references", "sorted set: member pod, score = last write; TTL `retention`", "sidecar"),
    KeyDoc("P:history", "stream, `MAXLEN ~ 10000`", "operator, scan Job"),
    KeyDoc("P:commands", "stream, `MAXLEN ~ 100`, TTL 1 d", "`driftwatch ack --adopt`"),
)

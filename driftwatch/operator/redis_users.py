"""The Redis login each monitor's sidecars get, and the ACL user behind it.

Credentials reach a sidecar only through a Secret in its own namespace (``driftwatch-<monitor>``, a
child of the DriftMonitor like its ConfigMap), read into the container's environment with
``secretKeyRef`` (``driftwatch.redisconn``'s ``DRIFTWATCH_REDIS_USERNAME`` / ``_PASSWORD``). What the
Secret holds depends on ``--sidecar-redis-auth``:

* ``acl`` (the bundled Redis): one ACL user per monitor, allowed only that monitor's keys (``P:*``)
  and its notify channel, no dangerous commands. A tenant who reads the Secret in its namespace can
  touch its own monitor's state and nothing else -- not another team's summaries or verdicts. The
  password is an HMAC of the monitor's uid under the operator's credential key: stable across
  restarts and replicas without storing or reading anything back, and unguessable without the key.
* ``shared``: every monitor's Secret holds the one sidecar login the platform team configured
  (``DRIFTWATCH_SIDECAR_REDIS_USERNAME`` / ``_PASSWORD`` in the operator's environment).
* ``none``: no Secret (a Redis without authentication; say so in the docs, not in a default).

Redis keeps ACL users in memory and replicas do not copy them: the operator (re)applies them on every
node -- at reconcile, at each resync, and when it reconnects to Redis. The user of a monitor deleted
while no operator ran (or while Redis was unreachable) is removed by the next leader's start-up sweep
(``cleanup.sweep_users``): nothing else would ever remove it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.options import OperatorOptions
from driftwatch.redisconn import RedisTarget, on_every_node

#: the command categories a sidecar needs (SET/MGET, ZADD, X*, PUBLISH, MULTI, EXPIRE, PING), minus
#: what could hurt others (FLUSHALL, KEYS, CONFIG, DEBUG, ... are all in @dangerous)
SIDECAR_CATEGORIES = ("+@read", "+@write", "+@stream", "+@pubsub", "+@transaction", "+@keyspace")
SIDECAR_DENIED = ("-@dangerous", "-@admin", "-@scripting")
#: the Secret's keys (the injected container reads them with secretKeyRef)
USERNAME_KEY = "username"
PASSWORD_KEY = "password"


@dataclass(frozen=True)
class Login:
    """What goes into the monitor's Secret."""

    username: str
    password: str = field(repr=False)


#: what every monitor's ACL user name starts with (the operator's own login is ``driftwatch-operator``)
USER_PREFIX = "driftwatch."
#: a namespace name (a DNS label): no dots, so the first dot after the prefix ends it
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def acl_username(namespace: str, name: str) -> str:
    """``driftwatch.<namespace>.<monitor>`` (no spaces or colons: ACL names and Secrets both like it)."""
    return f"{USER_PREFIX}{namespace}.{name}"


def parse_acl_username(username: str) -> tuple[str, str] | None:
    """(namespace, monitor) of a monitor's ACL user; None for any other user.

    A namespace has no dots and a monitor's name may, so the namespace ends at the first one.

    >>> parse_acl_username("driftwatch.shop.payments.v2")
    ('shop', 'payments.v2')
    >>> parse_acl_username("driftwatch-operator") is None
    True
    """
    if not username.startswith(USER_PREFIX):
        return None
    namespace, dot, name = username[len(USER_PREFIX) :].partition(".")
    if not dot or not name or not _NAMESPACE.fullmatch(namespace):
        return None
    return namespace, name


def acl_password(key: str, monitor: Monitor) -> str:
    """HMAC-SHA256 of the monitor's uid: a new monitor of the same name gets a new password."""
    msg = f"{monitor.namespace}/{monitor.name}/{monitor.uid}".encode()
    return hmac.new(key.encode(), msg, hashlib.sha256).hexdigest()


def login_for(monitor: Monitor, options: OperatorOptions) -> Login | None:
    """The sidecars' login for ``monitor``, or None when none is configured (``none``, or a monitor on
    its own Redis: its owner handles that Redis' authentication)."""
    if monitor.redis_url != options.redis_url:
        return None
    if options.sidecar_redis_auth == "acl" and options.sidecar_credential_key:
        username = acl_username(monitor.namespace, monitor.name)
        return Login(username, acl_password(options.sidecar_credential_key, monitor))
    if options.sidecar_redis_auth == "shared" and options.sidecar_redis_password:
        return Login(options.sidecar_redis_username or "default", options.sidecar_redis_password)
    return None


def acl_rules(monitor: Monitor, login: Login) -> list[str]:
    """``ACL SETUSER`` arguments: reset, then exactly this monitor's keys and channel."""
    prefix = monitor.keys.prefix
    return [
        "reset",
        "on",
        f">{login.password}",
        f"~{prefix}:*",
        f"&{monitor.keys.notify}",
        "+ping",
        "+hello",
        *SIDECAR_CATEGORIES,
        *SIDECAR_DENIED,
    ]


async def ensure_user(target: RedisTarget, monitor: Monitor, options: OperatorOptions) -> bool:
    """Create or refresh the monitor's ACL user on every node (``acl`` mode); False when not in it."""
    login = login_for(monitor, options)
    if login is None or options.sidecar_redis_auth != "acl":
        return False
    await on_every_node(target, "ACL", "SETUSER", login.username, *acl_rules(monitor, login))
    return True


async def remove_user(target: RedisTarget, namespace: str, name: str) -> None:
    """The monitor is gone: its ACL user too (``acl`` mode; the caller checks)."""
    await on_every_node(target, "ACL", "DELUSER", acl_username(namespace, name))


async def monitor_users(target: RedisTarget) -> set[tuple[str, str]]:
    """(namespace, monitor) of every monitor's ACL user on any node (``ACL USERS``: the operator's
    login needs ``+acl|users``). For the start's sweep of users whose monitor is gone."""
    found: set[tuple[str, str]] = set()
    for answer in await on_every_node(target, "ACL", "USERS"):
        for user in answer or ():
            owner = parse_acl_username(user.decode() if isinstance(user, bytes) else str(user))
            if owner is not None:
                found.add(owner)
    return found

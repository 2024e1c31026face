"""Where Redis is and how to log in: one parser, one client factory, one redaction rule.

The operator and every sidecar reach Redis through :func:`connect`, so a single Redis, a Sentinel
group and a Redis Cluster are spelled the same way everywhere -- as a URL without credentials:

* ``redis://host:6379/0``, ``rediss://...`` (TLS)
* ``redis+sentinel://s1:26379,s2:26379/mymaster/0`` (``rediss+sentinel`` for TLS)
* ``redis+cluster://n1:6379,n2:6379`` (``rediss+cluster``)

Credentials never travel in the URL: they come from the process environment, which the chart and the
injected sidecar fill from Secrets (``secretKeyRef``) or mounted Secret files --
``DRIFTWATCH_REDIS_USERNAME`` / ``DRIFTWATCH_REDIS_PASSWORD`` (or ``..._FILE``: a path to read) and
``DRIFTWATCH_REDIS_CA_FILE`` (a CA bundle for ``rediss``). A URL that still carries a password is
accepted (older installs) but :func:`redact` is what every log line, condition, Event and metric
label gets, so the password never leaves the process.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

Mode = Literal["standalone", "sentinel", "cluster", "unix"]
AnyRedis = aioredis.Redis | RedisCluster

ENV_USERNAME = "DRIFTWATCH_REDIS_USERNAME"
ENV_PASSWORD = "DRIFTWATCH_REDIS_PASSWORD"
ENV_CA_FILE = "DRIFTWATCH_REDIS_CA_FILE"
SCHEMES: dict[str, tuple[Mode, bool]] = {
    "redis": ("standalone", False),
    "rediss": ("standalone", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "unix": ("unix", False),
}
#: query parameters that carry a secret (redis-py reads ``password`` from the query string)
_SECRET_PARAMS = frozenset({"password", "pass", "pwd", "token", "secret", "auth"})
_URL_IN_TEXT = re.compile(r"\b(?:rediss?|unix)(?:\+(?:sentinel|cluster))?://[^\s'\"<>]+")


def redact(url: str) -> str:
    """``url`` with any password (userinfo or query) replaced by ``***``; the rest kept for debugging.

    >>> redact("redis://:hunter2@redis:6379/0?password=x&db=1")
    'redis://:***@redis:6379/0?password=***&db=1'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable Redis URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hosts}" if sep else f"{userinfo}@{hosts}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*")
    out = f"{parts.scheme}://{netloc}{parts.path}"
    return out + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def redact_text(text: str) -> str:
    """Every Redis URL inside ``text`` (an exception message, a log line) redacted."""
    return _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)


def strip_credentials(url: str) -> str:
    """``url`` without userinfo or secret query parameters: what may be written into a ConfigMap.

    >>> strip_credentials("redis://user:pw@redis:6379/0?password=x")
    'redis://redis:6379/0'
    """
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    secret = _SECRET_PARAMS | {"username"}
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in secret]
    query = f"?{urlencode(pairs)}" if pairs else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def has_credentials(url: str) -> bool:
    """Whether ``url`` itself carries a password (what a ConfigMap or a CRD field must never hold)."""
    return redact(url) != url


def read_secret(env: Mapping[str, str], name: str) -> str | None:
    """``$NAME``, else the contents of the file ``$NAME_FILE`` (a mounted Secret), else None."""
    value = env.get(name)
    if value:
        return value
    path = env.get(f"{name}_FILE")
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    return None


@dataclass(frozen=True)
class RedisTarget:
    """A parsed Redis address plus the credentials from the environment (never printed: ``repr``
    and ``str`` show the redacted URL)."""

    url: str
    mode: Mode
    tls: bool
    hosts: tuple[tuple[str, int], ...]
    db: int = 0
    #: Sentinel: the monitored master's name
    service: str = ""
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None

    def __str__(self) -> str:
        return redact(self.url)

    @property
    def display(self) -> str:
        """The URL as it may appear in logs, conditions and Events."""
        return redact(self.url)

    @classmethod
    def parse(cls, url: str, env: Mapping[str, str] | None = None) -> RedisTarget:
        """``url`` plus ``DRIFTWATCH_REDIS_*`` from ``env`` (default: the process environment).
        Credentials in the environment win over credentials in the URL. Raises ValueError naming
        what is wrong -- with the URL redacted."""
        env = os.environ if env is None else env
        shown = redact(url)
        try:
            parts = urlsplit(url)
        except ValueError as e:
            raise ValueError(f"{shown}: not a URL ({e})") from None
        if parts.scheme not in SCHEMES:
            raise ValueError(f"{shown}: scheme must be one of {', '.join(SCHEMES)}")
        mode, tls = SCHEMES[parts.scheme]
        userinfo, _, hostlist = parts.netloc.rpartition("@")
        user_in_url, _, password_in_url = userinfo.partition(":")
        query = dict(parse_qsl(parts.query))
        hosts: list[tuple[str, int]] = []
        if mode != "unix":
            default_port = 26379 if mode == "sentinel" else 6379
            for item in filter(None, hostlist.split(",")):
                host, sep, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
                try:
                    hosts.append((unquote(host if sep else item), int(port) if sep else default_port))
                except ValueError:
                    raise ValueError(f"{shown}: bad port in {item!r}") from None
            if not hosts:
                raise ValueError(f"{shown}: no host")
        segments = [s for s in parts.path.split("/") if s]
        service = ""
        if mode == "sentinel":
            if not segments:
                raise ValueError(
                    f"{shown}: a sentinel URL names the master: redis+sentinel://host:26379/mymaster"
                )
            service = segments.pop(0)
        db = 0
        if mode in ("standalone", "sentinel") and segments:
            try:
                db = int(segments[0])
            except ValueError:
                raise ValueError(f"{shown}: database must be a number, got {segments[0]!r}") from None
        if mode == "unix":
            db = int(query.get("db", "0") or 0)
        username = read_secret(env, ENV_USERNAME) or unquote(user_in_url) or query.get("username")
        password = read_secret(env, ENV_PASSWORD) or unquote(password_in_url) or query.get("password")
        return cls(
            url=url,
            mode=mode,
            tls=tls,
            hosts=tuple(hosts),
            db=db,
            service=service,
            username=username or None,
            password=password or None,
            ca_file=env.get(ENV_CA_FILE) or None,
        )


def connect(target: RedisTarget, *, decode_responses: bool = False, **options: Any) -> AnyRedis:
    """A client for ``target``: ``redis.asyncio.Redis`` (single or Sentinel-managed master) or
    ``RedisCluster``. ``options`` are redis-py connection options (timeouts, health checks); nothing
    connects until the first command."""
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    tls: dict[str, Any] = {}
    if target.tls:
        tls = {"ssl": True, "ssl_ca_certs": target.ca_file} if target.ca_file else {"ssl": True}
    if target.mode == "cluster":
        # options of a single connection that RedisCluster does not take (it retries per node itself)
        for key in ("health_check_interval", "retry_on_timeout", "max_connections"):
            options.pop(key, None)
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in target.hosts],
            decode_responses=decode_responses,
            **auth,
            **tls,
            **options,
        )
    if target.mode == "sentinel":
        sentinel = Sentinel(
            list(target.hosts),
            sentinel_kwargs={
                "socket_timeout": options.get("socket_timeout", 2.0),
                "socket_connect_timeout": options.get("socket_connect_timeout", 2.0),
                **tls,
            },
            **auth,
            **tls,
        )
        master: aioredis.Redis = sentinel.master_for(
            target.service, db=target.db, decode_responses=decode_responses, **options
        )
        return master
    if target.mode == "unix":
        path = urlsplit(target.url).path
        return aioredis.Redis(
            unix_socket_path=path, db=target.db, decode_responses=decode_responses, **auth, **options
        )
    (host, port), *_ = target.hosts
    return aioredis.Redis(
        host=host, port=port, db=target.db, decode_responses=decode_responses, **auth, **tls, **options
    )


def connect_url(url: str, *, decode_responses: bool = False, **options: Any) -> AnyRedis:
    """:func:`connect` for a URL, credentials from the process environment."""
    return connect(RedisTarget.parse(url), decode_responses=decode_responses, **options)


async def on_every_node(target: RedisTarget, *command: str) -> list[Any]:
    """Run ``command`` on every node that may serve ``target``'s data: the one server; every master
    and replica of a cluster; the Sentinel group's master and its replicas. For what Redis does not
    replicate (``ACL SETUSER``): a failover must not lose it. Returns each node's answer (``ACL USERS``
    differs from node to node when one was down while users were added or removed)."""
    options: dict[str, Any] = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0}
    if target.mode == "cluster":
        cluster = connect(target, **options)
        assert isinstance(cluster, RedisCluster)
        try:
            answer = await cluster.execute_command(*command, target_nodes=RedisCluster.ALL_NODES)
        finally:
            await cluster.aclose()
        # one answer per node (a dict by node name), unless redis-py merged them for this command
        return list(answer.values()) if isinstance(answer, dict) else [answer]
    if target.mode != "sentinel":
        client = connect(target, **options)
        try:
            return [await client.execute_command(*command)]
        finally:
            await client.aclose()
    tls: dict[str, Any] = {"ssl": True, "ssl_ca_certs": target.ca_file} if target.tls else {}
    sentinel = Sentinel(list(target.hosts), sentinel_kwargs={**options, **tls})
    master = await sentinel.discover_master(target.service)
    replicas = await sentinel.discover_slaves(target.service)
    answers = []
    for host, port in [master, *replicas]:
        node = connect(replace(target, mode="standalone", hosts=((host, port),), db=0), **options)
        try:
            answers.append(await node.execute_command(*command))
        finally:
            await node.aclose()
    for s in sentinel.sentinels:
        await s.aclose()
    return answers

"""DriftWatch on a real three-master Redis Cluster and a real Sentinel group, on loopback.

* Cluster: every key of one monitor hashes to one slot (the ``{namespace:monitor}`` hash tag), so the
  sidecar's ``MULTI`` of summary + pod set + notification runs unchanged; the operator reads and merges
  the summaries, its notification listener hears the ``PUBLISH``, and a deleted monitor's keys are
  removed. Per-monitor ACL users are created on every node (Redis does not replicate ACLs).
* Sentinel: the sidecar writes through the Sentinel-managed master; the master is killed, Sentinel
  promotes the replica, and writes and reads go on against the new master (redis-py follows Sentinel).

Before issue 12 the keys of one monitor spread over all slots (CROSSSLOT on the first MULTI) and only
``redis://`` URLs were understood.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from reliability_helpers import record

from driftwatch.devcluster.stack import free_port, wait_for
from driftwatch.operator import cleanup, pod_reports
from driftwatch.operator.notify import NotifyListener
from driftwatch.redisconn import RedisTarget, connect, on_every_node
from driftwatch.sidecar.store import Store
from driftwatch.vocab.rediskeys import MonitorKeys

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def need_redis() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (bash scripts/install-system-deps.sh)")
    return binary


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) exists and is free too."""
    while True:
        port = free_port()
        if port + 10000 <= 65535:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


class Node:
    def __init__(self, workdir: Path, *args: str) -> None:
        self.port = cluster_port() if "--cluster-enabled" in args else free_port()
        self.dir = workdir / str(self.port)
        self.dir.mkdir(parents=True)
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Node:
        cmd = [need_redis(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        cmd += ["--save", "", "--appendonly", "no", "--protected-mode", "no", *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: ping_ok(self), 10, f"redis on {self.port}")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def ping_ok(node: Node) -> bool:
    try:
        return bool(node.client().ping())
    except redis.exceptions.RedisError:
        return False


@pytest.fixture
def three_masters(tmp_path: Path) -> Iterator[list[Node]]:
    nodes: list[Node] = []
    try:
        for _ in range(3):  # one at a time, so a failed start still kills the ones already running
            nodes.append(Node(tmp_path, "--cluster-enabled", "yes", "--cluster-node-timeout", "2000"))
            nodes[-1].start()
        hosts = [f"127.0.0.1:{n.port}" for n in nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *hosts, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )

        def ok() -> bool:
            return all(n.client().cluster("info").get("cluster_state") == "ok" for n in nodes)

        wait_for(ok, 30, "cluster_state:ok")
        yield nodes
    finally:
        for n in nodes:
            n.kill()


def summary(pod: str) -> bytes:
    """A pod's summary, serialised as the sidecar hands it to ``Store.publish_summary``."""
    return json.dumps({"pod": pod, "streams": [], "time": time.time()}).encode()


def test_cluster_keeps_one_monitor_in_one_slot(three_masters: list[Node]) -> None:
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in three_masters)
    target = RedisTarget.parse(url, env={})
    assert target.mode == "cluster"

    async def main() -> None:
        heard: list[tuple[str, str]] = []

        async def trigger(ns: str, name: str) -> None:
            heard.append((ns, name))

        listener = NotifyListener(url, "driftwatch", trigger, debounce=0.05)
        listening = asyncio.create_task(listener.run())
        await asyncio.sleep(1.0)
        keys_of: dict[str, MonitorKeys] = {}
        slots: dict[str, set[int]] = {}
        client = connect(target, decode_responses=True)
        for i in range(6):  # monitors spread over the three masters
            name = f"m{i}"
            keys = MonitorKeys.of("driftwatch", "shop", name)
            keys_of[name] = keys
            store = Store(url, keys.prefix, "pod-a")
            await store.publish_summary(summary("pod-a"), ttl=60, notify=True)  # MULTI across its keys
            await store.save_checkpoint(b"{}")
            await store.close()
            slots[name] = {
                int(await client.execute_command("CLUSTER KEYSLOT", k))
                for k in (
                    keys.summary("pod-a"),
                    keys.pods,
                    keys.checkpoint("pod-a"),
                    keys.events,
                    keys.ingest,
                )
            }
        assert all(len(s) == 1 for s in slots.values()), slots
        assert len(set().union(*slots.values())) > 1  # but different monitors, different slots
        reports = await pod_reports.read_reports(client, keys_of["m0"], time.time(), 60)
        assert reports.pods == ["pod-a"]
        await asyncio.sleep(0.5)
        assert ("shop", "m0") in heard, heard  # the PUBLISH in the MULTI reached the listener
        removed = await cleanup.delete_keys(client, keys_of["m1"])
        assert removed == 4  # summary, pods, checkpoint and the checkpoints index (P:checkpoints)
        assert await client.exists(keys_of["m0"].pods) == 1
        # ACL users are per node: created on every master
        await on_every_node(target, "ACL", "SETUSER", "probe-user", "on", ">pw", "~x", "+ping")
        for node in three_masters:
            assert "probe-user" in [
                u if isinstance(u, str) else u.decode() for u in node.client().acl_users()
            ]
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await client.aclose()

    asyncio.run(main())


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[tuple[Node, Node, list[Node]]]:
    master = Node(tmp_path)
    replica = Node(tmp_path, "--replicaof", "127.0.0.1", str(master.port))
    sentinels: list[Node] = []
    try:
        master.start()
        replica.start()
        for _ in range(3):
            port = free_port()
            conf = tmp_path / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {tmp_path}\n"
                f"sentinel monitor dwmaster 127.0.0.1 {master.port} 2\n"
                "sentinel down-after-milliseconds dwmaster 1000\n"
                "sentinel failover-timeout dwmaster 5000\n"
                "sentinel parallel-syncs dwmaster 1\n"
            )
            s = Node.__new__(Node)
            s.port, s.dir, s.args = port, tmp_path, ()
            s.proc = subprocess.Popen(
                [need_redis(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            wait_for(lambda s=s: ping_ok(s), 10, f"sentinel on {port}")
            sentinels.append(s)
        wait_for(
            lambda: master.client().info("replication")["connected_slaves"] >= 1, 20, "the replica to sync"
        )
        yield master, replica, sentinels
    finally:
        for n in (master, replica, *sentinels):
            n.kill()


def test_sentinel_failover(sentinel_group: tuple[Node, Node, list[Node]]) -> None:
    master, replica, sentinels = sentinel_group
    url = "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in sentinels) + "/dwmaster/0"
    keys = MonitorKeys.of("driftwatch", "shop", "pay")

    async def write_and_read(pod: str) -> list[str]:
        store = Store(url, keys.prefix, pod, timeout=2.0)
        try:
            await store.publish_summary(summary(pod), ttl=120)
        finally:
            await store.close()
        client = connect(RedisTarget.parse(url, env={}), decode_responses=True, socket_timeout=2.0)
        try:
            return (await pod_reports.read_reports(client, keys, time.time(), 120)).pods
        finally:
            await client.aclose()

    assert asyncio.run(write_and_read("pod-a")) == ["pod-a"]
    wait_for(lambda: replica.client().exists(keys.pods) == 1, 10, "the write replicated")
    master.kill()
    started = time.monotonic()

    def promoted() -> bool:
        role = replica.client().info("replication")["role"]
        return role == "master"

    wait_for(promoted, 60, "Sentinel to promote the replica", interval=0.5)
    failover_s = time.monotonic() - started
    pods = wait_for(lambda: _retry(write_and_read, "pod-b"), 30, "a write through the new master")
    record(promoted_seconds=round(failover_s, 1))
    assert sorted(pods) == ["pod-a", "pod-b"]


def _retry(fn: Callable[[str], Coroutine[Any, Any, list[str]]], pod: str) -> list[str] | None:
    try:
        return asyncio.run(fn(pod))
    except (redis.exceptions.RedisError, OSError):
        return None

"""The harness cleans up after itself: no component (etcd, kube-apiserver, ..., kwok) survives a test run.

Leaked control planes are the classic failure of process-based test clusters (ports stay taken, CPU
stays busy, the next run gets slower and flakier), so each way out is tested with a real cluster:
an exception inside ``with``, Ctrl-C (SIGINT), ``kill`` (SIGTERM), a parent killed outright
(SIGKILL, where only the kernel's parent-death signal is left to help) and a parent that simply exits
without calling ``stop()`` (atexit).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from driftwatch.devcluster import LocalCluster
from driftwatch.devcluster.processes import PortAllocator, pid_alive

pytestmark = pytest.mark.skipif(
    os.environ.get("DW_USE_KUBECONFIG") == "1", reason="tests the local control plane's own processes"
)

CHILD = """
import json, sys, time
from driftwatch.devcluster import LocalCluster
cluster = LocalCluster(
    wait_for_controllers=False,
    argo_rollouts=sys.argv[2] == "argo",
    progress=lambda l: print(l, file=sys.stderr, flush=True),
)
if sys.argv[1] == "forget-stop":  # start, never stop: exit when stdin closes and leave it to atexit
    cluster.start()
    print(json.dumps({"pids": cluster.pids, "dir": str(cluster.directory)}), flush=True)
    sys.stdin.read()
else:
    with cluster:
        print(json.dumps({"pids": cluster.pids, "dir": str(cluster.directory)}), flush=True)
        time.sleep(600)
"""


#: what a LocalCluster runs by default; ``argo_rollouts=True`` adds the Argo Rollouts controller
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def wait_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    """Return the pids still alive after ``timeout`` (an empty list is what we want)."""
    deadline = time.monotonic() + timeout
    while (alive := [p for p in pids if pid_alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def test_port_race_is_retried_and_exception_stops_everything(tmp_path: Path) -> None:
    """A port taken between allocation and bind is retried; an exception in ``with`` stops it all."""
    allocate = PortAllocator()
    with socket.socket() as squatter:  # takes the first port the cluster will be offered
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        offered = iter([int(squatter.getsockname()[1])])
        progress: list[str] = []
        cluster = LocalCluster(
            tmp_path / "cluster",
            progress=progress.append,
            port_allocator=lambda: next(offered, 0) or allocate(),
            wait_for_controllers=False,  # this test is about processes, not controllers
        )
        pids: list[int] = []

        def use_then_fail() -> None:
            with cluster:
                pids.extend(cluster.pids)
                cluster.kubectl("get", "namespaces")  # it really is up
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            use_then_fail()

    assert any("port taken" in line for line in progress), progress
    assert len(pids) == len(COMPONENTS)
    assert wait_gone(pids, timeout=0) == []
    assert (tmp_path / "cluster" / "logs" / "kube-apiserver.log").is_file()  # logs kept for a post-mortem


@pytest.mark.parametrize(
    ("how", "argo"),
    # the Argo Rollouts controller where only the kernel can stop it: the parent is SIGKILLed
    [("SIGINT", False), ("SIGTERM", False), ("SIGKILL", True), ("forget-stop", False)],
)
def test_parent_ending_leaves_no_process(how: str, argo: bool) -> None:
    """Ctrl-C, ``kill``, ``kill -9`` of the parent, or a parent that exits without calling stop()."""
    info: dict[str, Any] = {}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, how, "argo" if argo else "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # blocks until the cluster is up (or the child died)
        assert line, f"child failed to start a cluster:\n{child.stderr.read() if child.stderr else ''}"
        info.update(json.loads(line))
        pids: list[int] = info["pids"]
        assert len(pids) == len(COMPONENTS) + (1 if argo else 0)
        assert all(pid_alive(p) for p in pids)

        if how == "forget-stop":
            assert child.stdin is not None
            child.stdin.close()  # the child's read() returns and the interpreter exits normally
        else:
            child.send_signal(getattr(signal, how))
        child.wait(timeout=60)

        assert wait_gone(pids) == [], f"left behind after {how}"
        if how != "SIGKILL":  # an orderly stop also removes the temporary directory
            assert not Path(info["dir"]).exists()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if info:  # after SIGKILL nobody was left to remove the directory
            shutil.rmtree(info["dir"], ignore_errors=True)

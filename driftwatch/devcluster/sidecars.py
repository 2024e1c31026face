"""Sidecar processes standing in for Pods' sidecar containers, fed by ``driftwatch simulate``.

kwok reports Pods Running but starts no container, so whatever a Pod's sidecar would do runs here: one
``driftwatch sidecar`` process per Pod, with the monitor's rendered ConfigMap (on free loopback ports,
several may run at once) and ``POD_NAME`` set to the real Pod's name -- so its summaries reach Redis
under that Pod's keys and the operator groups them by that Pod's labels. Shared by the e2e tests of
rollout gating and ``driftwatch demo``.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from driftwatch.devcluster.processes import http_ok
from driftwatch.devcluster.stack import ClusterLike, free_port, wait_for


def rendered_config(cluster: ClusterLike, namespace: str, monitor: str) -> dict[str, Any]:
    """The sidecar config the operator rendered for ``monitor`` (its ConfigMap ``driftwatch-<monitor>``)."""
    out = cluster.kubectl("get", "configmap", f"driftwatch-{monitor}", "-n", namespace, "-o", "yaml")
    config: dict[str, Any] = yaml.safe_load(yaml.safe_load(out.stdout)["data"]["sidecar.yaml"])
    return config


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:  # a slow final checkpoint is not what anyone waits for
            proc.kill()
            proc.wait(10)


class PodSidecar:
    """One Pod's sidecar as a process, and the traffic generators feeding it."""

    def __init__(self, pod: str, config: dict[str, Any], workdir: Path) -> None:
        self.pod = pod
        self.ingest, self.metrics = free_port(), free_port()
        cfg = {
            **config,
            "listen": {**config.get("listen", {}), "port": self.ingest, "metricsPort": self.metrics},
        }
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / f"sidecar-{pod}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        self.log_path = workdir / f"sidecar-{pod}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "driftwatch", "sidecar", "--config", str(path)],
                env={"POD_NAME": pod, "PATH": "/usr/bin:/bin"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.feeders: list[subprocess.Popen[bytes]] = []

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics}/metrics"

    def wait_ready(self, timeout: float = 30) -> PodSidecar:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"sidecar of {self.pod} exited {self.proc.returncode}; log {self.log_path}"
                )
            return http_ok(f"http://127.0.0.1:{self.metrics}/healthz", timeout=1)

        wait_for(up, timeout, f"the sidecar of {self.pod}")
        return self

    def feed(
        self,
        mode: str = "normal",
        *,
        seconds: float = 600,
        sigmas: float = 6.0,
        rate: float = 200,
        seed: int = 0,
        change_at: float = 0.0,
    ) -> subprocess.Popen[bytes]:
        """Start ``driftwatch simulate`` against this sidecar (stopped with it, or by ``stop_feeding``)."""
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "driftwatch",
                "simulate",
                "--target",
                f"http://127.0.0.1:{self.ingest}",
                "--mode",
                mode,
                "--sigmas",
                str(sigmas),
                "--rate",
                str(rate),
                "--duration",
                str(seconds),
                "--change-at",
                str(change_at),
                "--seed",
                str(seed),
                "--quiet",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.feeders.append(proc)
        return proc

    def stop_feeding(self) -> None:
        for p in self.feeders:
            _stop(p, 5)
        self.feeders.clear()

    def stop(self) -> None:
        self.stop_feeding()
        _stop(self.proc)


class SidecarFleet(contextlib.AbstractContextManager["SidecarFleet"]):
    """The sidecars of a set of Pods, by Pod name; every process stopped on exit."""

    def __init__(self, config: dict[str, Any], workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.sidecars: dict[str, PodSidecar] = {}

    def start(self, pod: str) -> PodSidecar:
        """The Pod's sidecar, started (and ready) if it is not running yet."""
        side = self.sidecars.get(pod)
        if side is None:
            side = self.sidecars[pod] = PodSidecar(pod, self.config, self.workdir).wait_ready()
        return side

    def stop_feeding(self) -> None:
        for side in self.sidecars.values():
            side.stop_feeding()

    def __exit__(self, *exc: object) -> None:
        for side in self.sidecars.values():
            side.stop()
        self.sidecars.clear()

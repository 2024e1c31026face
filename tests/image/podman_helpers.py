"""Running the image with podman the way Kubernetes runs DriftWatch's containers.

Every container here gets what the chart's and the injector's securityContexts ask for
(``runAsUser: 65532``, ``readOnlyRootFilesystem: true``, ``capabilities: drop [ALL]``,
``allowPrivilegeEscalation: false``) and nothing writable: podman's ``--read-only`` would otherwise
mount tmpfs on /tmp, /var/tmp and /run, which a pod does not get. The host network: there is no
container network stack on these machines, and the tests reach the sidecar on loopback. runc: crun
refuses this host's hybrid cgroup layout; the limits stay modest because higher ones are refused.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

PODMAN = ["podman", "--runtime", "runc"]
UID = 65532

#: a pod's securityContext, as podman flags
RESTRICTED = [
    "--read-only",
    "--read-only-tmpfs=false",
    f"--user={UID}:{UID}",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--network=host",
    "--ulimit=nofile=1024:1024",
    "--ulimit=nproc=4096:4096",
]


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def run(
    image: str, command: list[str], *flags: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``command`` (a container's ``command`` + ``args``) in a fresh restricted container; not checked."""
    return podman(
        "run", "--rm", *RESTRICTED, *flags, f"--entrypoint={command[0]}", image, *command[1:],
        check=False, timeout=timeout,
    )  # fmt: skip


def python(image: str, code: str, *flags: str) -> Any:
    """Run ``code`` with the image's interpreter (the venv's) in a restricted container; return the JSON
    it prints last."""
    result = run(image, ["python3", "-c", code], *flags)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def inspect(image: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(podman("image", "inspect", image).stdout)[0]
    return doc


class Container:
    """A detached restricted container, removed by ``remove()`` (also after a failed test)."""

    def __init__(self, image: str, command: list[str], *flags: str) -> None:
        self.name = f"dw-image-test-{uuid.uuid4().hex[:8]}"
        podman(
            "run", "--detach", f"--name={self.name}", *RESTRICTED, *flags,
            f"--entrypoint={command[0]}", image, *command[1:],
        )  # fmt: skip

    def state(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(podman("inspect", self.name).stdout)[0]
        return doc

    def running(self) -> bool:
        return bool(self.state()["State"]["Running"])

    def logs(self) -> str:
        r = podman("logs", self.name, check=False)
        return r.stdout + r.stderr

    def signal(self, sig: str) -> None:
        podman("kill", f"--signal={sig}", self.name)

    def wait(self, timeout: float = 60) -> int:
        """The main process' exit code, once it exits."""
        return int(podman("wait", self.name, timeout=timeout).stdout.strip().splitlines()[-1])

    def exec_python(self, code: str) -> Any:
        """``code`` in the running container (as uid 65532, like its main process); the JSON it prints."""
        r = podman("exec", f"--user={UID}:{UID}", self.name, "python3", "-c", code)
        return json.loads(r.stdout.strip().splitlines()[-1])

    def remove(self) -> None:
        podman("rm", "--force", "--time=0", self.name, check=False)

"""Child processes of the local control plane: start, wait until ready, stop, and never leak.

Each component runs in its own session (so its process group can be signalled as a whole) with stdout
and stderr appended to ``<cluster dir>/logs/<name>.log``. Three layers make sure nothing outlives the
Python process that started it:

1. ``ManagedProcess.stop()`` (called by ``LocalCluster.stop()``/``__exit__``): SIGTERM to the group,
   then SIGKILL after a grace period.
2. An ``atexit`` hook stops whatever is still registered, for code paths that forgot ``stop()``.
3. ``PR_SET_PDEATHSIG`` (Linux) makes the kernel SIGKILL the child if its parent dies without running
   any Python code (SIGKILL, OOM). It is tied to the *thread* that forked, so it is only set when
   starting from the main thread; a worker thread's exit would otherwise kill the cluster.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()


class ComponentError(RuntimeError):
    """A component failed to start or become ready; the message carries the tail of its log."""


def _load_prctl() -> Callable[..., int] | None:
    # resolved here, in the parent: dlopen() between fork and exec can deadlock
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # libc is already loaded into the process
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the forked child
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie is dead, just not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            # field 3 is the state; the command name before it may contain spaces, hence rpartition
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


class PortAllocator:
    """Hands out free loopback ports, never the same one twice in this process.

    A port found free can still be taken by someone else before our child binds it; callers detect
    that from the component's log (:meth:`ManagedProcess.port_conflict`) and retry with new ports.
    """

    def __init__(self) -> None:
        self._given: set[int] = set()

    def __call__(self) -> int:
        for _ in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in self._given:
                self._given.add(port)
                return port
        raise RuntimeError("could not find a free loopback port")


class ManagedProcess:
    """One long-running binary with its log file."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        in_main = threading.current_thread() is threading.main_thread()
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # own process group: stop() signals the whole group
                preexec_fn=_set_pdeathsig if in_main and _prctl else None,
            )
        with _live_lock:
            _live.add(self)

    def exit_code(self) -> int | None:
        """None while running, else the exit status (negative: killed by that signal)."""
        return self._proc.poll() if self._proc else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def listens_on(self, port: int) -> bool:
        """Is ``port`` bound by *this* process?

        A readiness probe alone cannot tell: if another cluster's etcd took our port, our etcd dies
        while the probe happily gets a 200 from theirs, and the two clusters would share data. So we
        match the listening socket's inode (``/proc/net/tcp``) against this process's open fds.
        Off Linux (no /proc) this answers True and the probe alone decides.
        """
        if self.pid is None:
            return False
        try:
            inodes = set()
            for table in ("/proc/net/tcp", "/proc/net/tcp6"):
                with contextlib.suppress(FileNotFoundError), open(table) as f:
                    for line in f.readlines()[1:]:
                        fields = line.split()
                        # local_address is HEXIP:HEXPORT, state 0A is LISTEN, field 9 the inode
                        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                            inodes.add(f"socket:[{fields[9]}]")
            fd_dir = Path(f"/proc/{self.pid}/fd")
            if not fd_dir.parent.exists():
                return True
            return any(os.readlink(fd) in inodes for fd in fd_dir.iterdir() if fd.is_symlink())
        except (FileNotFoundError, PermissionError):
            return not Path("/proc/net/tcp").exists()

    def port_conflict(self) -> bool:
        """Did the component die because a port was taken between our check and its bind?"""
        tail = self.log_tail(200).lower()
        return "address already in use" in tail or "bind: address" in tail

    def fail(self, message: str) -> ComponentError:
        return ComponentError(
            f"{self.name}: {message}\n--- last lines of {self.log_path} ---\n{self.log_tail()}\n---"
        )

    def wait_ready(
        self,
        check: Callable[[], bool],
        *,
        timeout: float,
        interval: float = 0.2,
        what: str = "ready",
    ) -> float:
        """Poll ``check`` until it returns True; return the seconds it took.

        Raises :class:`ComponentError` with the log tail if the process exits or ``timeout`` passes.
        Exceptions from ``check`` count as "not yet" (the port is not open, TLS not up, ...).
        """
        start = time.monotonic()
        deadline = start + timeout
        while True:
            code = self.exit_code()
            if code is not None:
                raise self.fail(f"exited with status {code} before becoming {what}")
            try:
                if check():
                    return time.monotonic() - start
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise self.fail(f"not {what} after {timeout:.0f}s")
            time.sleep(interval)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds, and reap the child."""
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                self._signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self._signal_group(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            # the leader is gone; anything it left in its group goes too
            self._signal_group(proc.pid, signal.SIGKILL)
        finally:
            with _live_lock:
                _live.discard(self)

    @staticmethod
    def _signal_group(pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        except OSError as e:  # pragma: no cover - EPERM would mean the pgid was reused by someone else
            if e.errno != errno.EPERM:
                raise


@atexit.register
def _stop_all() -> None:
    """Last resort: stop every process a caller forgot (or could not) stop."""
    with _live_lock:
        left = list(_live)
    for proc in left:
        with contextlib.suppress(Exception):
            proc.stop(grace=5)


def http_ok(url: str, *, context: ssl.SSLContext | None = None, timeout: float = 5.0) -> bool:
    """GET ``url``; True on HTTP 200. Used for /readyz, /healthz and etcd's /health."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False

"""The image, built from the real Dockerfile and run the way a pod runs it (tests/image/podman_helpers.py).

What these tests prove, inside the container, as uid 65532 on a read-only root with nothing writable:

* every ``driftwatch`` subcommand the chart, the kustomize tree, the rollout examples and the operator's
  rendered children start is in the image and answers ``--help``;
* ``driftwatch replay`` finds a shift in a CSV with the compiled kernel (built in the image's build
  stage, not copied from the checkout: .dockerignore leaves ``*.so`` out);
* the sidecar, started with the operator's own rendered config and container spec, takes samples POSTed
  from the host, turns Drifting in ``/v1/status`` and its metrics, checkpoints to a real Redis on
  SIGTERM and exits 0;
* the image holds the runtime dependencies and nothing else: no test/dev/bench extras, no pip,
  setuptools or wheel, no compiler, no dev cluster, no demo.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from podman_helpers import UID, Container, inspect, python, run
from prometheus_client.parser import text_string_to_metric_families

from driftwatch.cli import COMMANDS
from driftwatch.devcluster.stack import RedisServer, free_port
from driftwatch.operator import inject, render, scan_children
from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.options import OperatorOptions, default_image
from driftwatch.vocab.names import CONFIG_KEY, CONFIG_MOUNT
from driftwatch.vocab.rediskeys import MonitorKeys

pytestmark = [
    pytest.mark.image,
    # the session's first test may build the image from nothing (minutes on a loaded machine) when
    # `make image` did not run first; every podman call and wait below has its own, shorter timeout
    pytest.mark.timeout(3600),
    pytest.mark.skipif(
        shutil.which("podman") is None,
        reason="podman is not installed: scripts/install-image-tools.sh (make system-deps) installs it",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
OPTS = OperatorOptions()

# --- which entry points are referenced ------------------------------------------------------------------


def _commands(obj: Any) -> Iterator[list[str]]:
    """``command`` + ``args`` of every container-like mapping in a manifest."""
    if isinstance(obj, dict):
        if "image" in obj and ("command" in obj or "args" in obj):
            yield [str(x) for x in [*(obj.get("command") or []), *(obj.get("args") or [])]]
        for v in obj.values():
            yield from _commands(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _commands(v)


def _subcommand(argv: list[str]) -> str | None:
    """The driftwatch subcommand a container runs (None: not a driftwatch container)."""
    if argv and argv[0] == "driftwatch":
        return argv[1] if len(argv) > 1 else "--help"
    return None


#: a chart template's `command: ["driftwatch"]` (or `[driftwatch, sub, ...]`) and its first arg
CHART_COMMAND = re.compile(
    r'command:\s*\[\s*"?driftwatch"?\s*(?:,\s*"?(?P<inline>[a-z-]+)"?)?[^\]]*\]'
    r"(?:\s*\n\s*args:\s*\n\s*-\s*(?P<arg>[a-z-]+))?"
)


def referenced_entry_points() -> dict[str, set[str]]:
    """subcommand -> where it is referenced (file, or the operator function rendering it)."""
    found: dict[str, set[str]] = {}

    def add(sub: str | None, where: str) -> None:
        if sub is not None:
            found.setdefault(sub, set()).add(where)

    # plain manifests: the kustomize tree (the chart's rendered output, kept current by
    # tests/integration/test_packaging.py) and the rollout examples
    for path in sorted((ROOT / "deploy").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for argv in _commands(doc):
                add(_subcommand(argv), str(path.relative_to(ROOT)))
    # the chart's templates (Go templates, not YAML): every driftwatch command in them, rendered or not
    for path in sorted((ROOT / "charts").rglob("*.yaml")):
        for m in CHART_COMMAND.finditer(path.read_text()):
            sub = m.group("inline") or m.group("arg")
            assert sub, f"{path}: a driftwatch command whose subcommand this test cannot read: {m.group(0)!r}"
            add(sub, str(path.relative_to(ROOT)))
    # what the operator renders: the injected sidecar and a scan's CronJob
    body = {
        "metadata": {"name": "pay", "namespace": "shop", "uid": "u1", "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"app": "pay"}},
            "scan": {"schedule": "*/5 * * * *", "timeout": "3m"},
        },
    }
    monitor = Monitor.from_body(body, OPTS)
    add(_subcommand(next(_commands(inject.sidecar_container(monitor, OPTS)))), "operator: inject.py")
    for child in [*scan_children.children(monitor, OPTS), *render.children(monitor, OPTS, prometheus=True)]:
        for argv in _commands(child):
            add(_subcommand(argv), f"operator: {child['kind']}")
    return found


def test_the_entry_points_are_found() -> None:
    """The collector itself: it sees at least the four containers DriftWatch is known to start."""
    found = referenced_entry_points()
    assert {"operator", "sidecar", "scan", "gate"} <= set(found), found
    unknown = set(found) - set(COMMANDS)
    assert not unknown, f"manifests start subcommands the CLI does not have: {unknown}"


def test_image_metadata_matches_the_pods(image: str) -> None:
    """Non-root by default (runAsNonRoot needs a numeric USER), the CLI as entry point, and the tag the
    operator injects by default (``--sidecar-image``'s default)."""
    config = inspect(image)["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["driftwatch"]
    assert image == default_image()
    labels = config.get("Labels") or {}
    assert labels.get("org.opencontainers.image.version") == default_image().rsplit(":", 1)[1]
    assert labels.get("org.opencontainers.image.revision")
    # the commit reaches driftwatch_build_info{git_commit} through the environment (driftwatch/buildinfo.py)
    env = dict(e.split("=", 1) for e in config.get("Env") or [])
    assert env.get("DRIFTWATCH_GIT_COMMIT") == labels["org.opencontainers.image.revision"]


def test_every_referenced_entry_point_answers_help(image: str) -> None:
    failures = []
    for sub, where in sorted(referenced_entry_points().items()):
        r = run(image, ["driftwatch", sub, "--help"])
        if r.returncode != 0 or "usage:" not in r.stdout:
            failures.append(f"{sub} (used by {sorted(where)}): rc {r.returncode}\n{r.stdout}\n{r.stderr}")
    assert not failures, "\n\n".join(failures)


# --- replay with the compiled kernel --------------------------------------------------------------------

SHIFT_AT = 3000


def test_replay_detects_a_shift_with_the_compiled_kernel(image: str, tmp_path: Path) -> None:
    """4 sigma up after row 3000 (fixed seed): the first DRIFT_START within a few rows of the shift."""
    rng = random.Random(7)
    rows = [rng.gauss(100, 10) for _ in range(SHIFT_AT)] + [rng.gauss(140, 10) for _ in range(1000)]
    data = tmp_path / "data"
    data.mkdir()
    (data / "latency.csv").write_text("latency_ms\n" + "\n".join(f"{v:.3f}" for v in rows) + "\n")
    data.chmod(0o755)
    (data / "latency.csv").chmod(0o644)
    mount = f"--volume={data}:/data:ro"

    r = run(image, ["driftwatch", "replay", "/data/latency.csv", "--json"], mount)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    starts = [e["index"] for e in res["events"] if e["type"] == "DRIFT_START"]
    assert starts, res["events"]
    assert SHIFT_AT <= starts[0] < SHIFT_AT + 50, res["events"]  # no false alarm before, found at once
    assert res["rows"] == len(rows)

    # the kernel replay ran is the one compiled into the venv by the build stage
    kernel = python(
        image,
        "import json, driftwatch.detect._kernel as k, driftwatch.detect.kernel as m;"
        "print(json.dumps({'file': k.__file__, 'used': m._kernel is k}))",
    )
    assert kernel["used"]
    assert re.fullmatch(
        r"/opt/driftwatch/lib/python3\.11/site-packages/driftwatch/detect/_kernel\.cpython-311-[\w-]+\.so",
        kernel["file"],
    ), kernel


# --- the sidecar ---------------------------------------------------------------------------------------


def http(method: str, url: str, body: Any = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def samples(n: int, mean: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    return {"samples": [{"feature": "latency_ms", "value": rng.gauss(mean, 10.0)} for _ in range(n)]}


def wait_for(cond: Any, what: str, container: Container, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = cond()
        except OSError:
            got = None
        if got:
            return got
        if not container.running():
            raise AssertionError(f"the sidecar exited while waiting for {what}:\n{container.logs()}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{container.logs()[-4000:]}")


#: everything uid 65532 can write in the container, outside the kernel's own filesystems
WRITABLE = """
import json, os
found = []
for top in os.listdir('/'):
    if top in ('proc', 'sys', 'dev'):
        continue
    for dirpath, dirnames, filenames in os.walk('/' + top):
        for name in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
            if os.access(name, os.W_OK):
                found.append(name)
print(json.dumps(found))
"""


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir=tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


def test_sidecar_detects_as_non_root_on_a_read_only_root(image: str, tmp_path: Path, redis_server) -> None:
    """The container the injector renders, its config the operator renders (only the ports differ: the
    host network is shared with other tests), samples from the host, Drifting, SIGTERM -> exit 0."""
    body = {
        "metadata": {"name": "payments", "namespace": "shop", "uid": "u1", "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"app": "payments"}},
            "features": [{"name": "latency_ms", "type": "numeric"}],
            "baseline": {"minSamples": 100},
            "redis": {"url": redis_server.url},
        },
    }
    monitor = Monitor.from_body(body, OPTS)
    config = render.sidecar_config(monitor, OPTS)
    port, metrics_port = free_port(), free_port()
    config["listen"] = {**config["listen"], "port": port, "metricsPort": metrics_port}
    assert config["listen"]["host"] == "127.0.0.1"
    conf_dir = tmp_path / "config"
    conf_dir.mkdir()
    (conf_dir / CONFIG_KEY).write_text(yaml.safe_dump(config))
    conf_dir.chmod(0o755)
    (conf_dir / CONFIG_KEY).chmod(0o444)  # the ConfigMap volume's defaultMode

    spec = inject.sidecar_container(monitor, OPTS)
    sc = spec["securityContext"]
    assert sc["runAsUser"] == UID
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert [m["mountPath"] for m in spec["volumeMounts"]] == [CONFIG_MOUNT]
    env = {e["name"]: "pod-0" if e["name"] == "POD_NAME" else "shop" for e in spec["env"]}
    flags = [f"--volume={conf_dir}:{CONFIG_MOUNT}:ro", *(f"--env={k}={v}" for k, v in env.items())]
    container = Container(image, [*spec["command"], *spec["args"]], *flags)
    try:
        base = f"http://127.0.0.1:{port}"
        metrics = f"http://127.0.0.1:{metrics_port}"
        wait_for(lambda: http("GET", f"{metrics}/healthz")[0] == 200, "healthz", container)

        # as a pod runs it: uid 65532, and nothing it could write to
        state = container.state()
        assert state["Config"]["User"] == f"{UID}:{UID}"
        assert state["HostConfig"]["ReadonlyRootfs"] is True
        status_lines = Path(f"/proc/{state['State']['Pid']}/status").read_text().splitlines()
        uid_line = next(line for line in status_lines if line.startswith("Uid:"))
        assert uid_line.split()[1:] == [str(UID)] * 4, uid_line
        assert container.exec_python(WRITABLE) == []

        ready = json.loads(http("GET", f"{metrics}/readyz")[1])
        assert ready == {"status": "ok", "redis": "available"}, ready

        # a baseline, then a shift of 10 sigma
        for i in range(2):
            assert http("POST", f"{base}/v1/samples", samples(200, 100.0, seed=i))[0] == 202

        def stream() -> dict[str, Any] | None:
            doc = json.loads(http("GET", f"{base}/v1/status")[1])
            return next((s for s in doc["streams"] if s["feature"] == "latency_ms"), None)

        def stable() -> bool:
            s = stream()
            return s is not None and s["state"] == "Stable" and s["samples"] == 400

        wait_for(stable, "Stable", container)
        for i in range(5):
            assert http("POST", f"{base}/v1/samples", samples(200, 200.0, seed=50 + i))[0] == 202
        wait_for(lambda: (stream() or {}).get("state") == "Drifting", "Drifting in /v1/status", container)

        def drifting_metric() -> bool:
            text = http("GET", f"{metrics}/metrics")[1].decode()
            return any(
                s.name == "driftwatch_drift_state"
                and s.labels.get("feature") == "latency_ms"
                and s.labels.get("state") == "Drifting"
                and s.value == 1
                for fam in text_string_to_metric_families(text)
                for s in fam.samples
            )

        wait_for(drifting_metric, "driftwatch_drift_state{state=Drifting} 1", container)

        # SIGTERM: drain, checkpoint to Redis, exit 0 (PID 1 in the container, as in a pod)
        container.signal("TERM")
        assert container.wait() == 0, container.logs()
        keys = MonitorKeys.of(monitor.key_prefix, monitor.namespace, monitor.name)
        checkpoint = json.loads(redis_server_client(redis_server).get(keys.checkpoint("pod-0")))
        assert ["latency_ms", "", 1400] in checkpoint["sidecar"]["ingested"]
    finally:
        container.remove()


def redis_server_client(server: RedisServer) -> Any:
    import redis

    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)


# --- what the image holds ------------------------------------------------------------------------------

#: run in the image: every installed distribution with its requirements, and what must not be there
CONTENTS = """
import importlib.metadata as md, importlib.util, json, os, platform, re, shutil, sys
impl = sys.implementation
iver = "{0.major}.{0.minor}.{0.micro}".format(impl.version)
# what packaging.markers.default_environment() says (packaging itself is not in the image)
environment = {
    "implementation_name": impl.name, "implementation_version": iver, "os_name": os.name,
    "platform_machine": platform.machine(), "platform_release": platform.release(),
    "platform_system": platform.system(), "platform_version": platform.version(),
    "python_full_version": platform.python_version(), "platform_python_implementation":
    platform.python_implementation(), "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
wheels = [os.path.join(d, f) for d, _, fs in os.walk("/") if not d.startswith(("/proc", "/sys"))
          for f in fs if re.match(r"(pip|setuptools|wheel)-.*\\.whl$", f)]
print(json.dumps({
    "requires": {d.metadata["Name"]: d.requires or [] for d in md.distributions()},
    "environment": environment,
    "modules": {
        m: importlib.util.find_spec(m) is not None
        for m in ["pip", "setuptools", "wheel", "pytest", "driftwatch.devcluster", "driftwatch.demo"]
    },
    "compilers": [
        c for c in ["gcc", "cc", "c++", "g++", "cpp", "x86_64-linux-gnu-gcc-12", "make"] if shutil.which(c)
    ],
    "python_h": [p for p in ["/usr/include/python3.11/Python.h", "/usr/local/include/python3.11/Python.h"]
                 if os.path.exists(p)],
    "wheels": wheels,
    "prefix": sys.prefix,
}))
"""


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(requires: dict[str, list[str]], environment: dict[str, str]) -> set[str]:
    """driftwatch and everything its requirements pull in, extras not followed, markers evaluated for
    the image's interpreter (e.g. redis wants async-timeout below Python 3.11.3 only)."""
    deps = {norm(name): reqs for name, reqs in requires.items()}
    closure: set[str] = set()
    todo = ["driftwatch"]
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        for spec in deps.get(name, []):
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({**environment, "extra": ""}):
                todo.append(norm(req.name))
    return closure


def test_the_image_holds_only_the_runtime(image: str) -> None:
    got = python(image, CONTENTS)
    assert got["prefix"] == "/opt/driftwatch"
    installed = {norm(n) for n in got["requires"]}
    closure = runtime_closure(got["requires"], got["environment"])
    # exactly driftwatch and what it needs at run time: nothing of the build (setuptools, wheel and
    # their packaging), no extra
    diff = {"extra": sorted(installed - closure), "missing": sorted(closure - installed)}
    assert installed == closure, diff
    extras = {norm(Requirement(s).name) for s in got["requires"]["driftwatch"] if "extra ==" in s}
    assert {"pytest", "hypothesis", "ruff", "mypy", "kubernetes", "matplotlib", "pyarrow"} <= extras
    assert not (extras - closure) & installed
    assert got["modules"] == {
        "pip": False,
        "setuptools": False,
        "wheel": False,
        "pytest": False,
        "driftwatch.devcluster": False,
        "driftwatch.demo": False,
    }
    assert got["compilers"] == []
    assert got["python_h"] == []
    assert got["wheels"] == []
    # and the CLI says so, instead of a traceback
    r = run(image, ["driftwatch", "demo"])
    assert r.returncode == 2
    assert "not part of this install" in r.stderr

"""Sidecar benchmark: the sidecar beside an empty aiohttp handler, one table, one run.

Each server runs pinned to one core, ``wrk`` on the other. Side by side in the same run: an empty
aiohttp handler (same loop, same 202 body: the framework's ceiling on this machine), the sidecar of
this tree and, with ``--before REF``, the sidecar of another commit (``git archive``, run from a
temporary directory) -- so "before/after" is measured under the same load, not quoted from another day.

    .venv/bin/python bench/sidecar.py [--duration 5] [--repeat 2] [--before main] [--quick]
    .venv/bin/python bench/sidecar.py --footprint [--before main]
    .venv/bin/python bench/sidecar.py --shape "samples form" [--before main]
    .venv/bin/python bench/sidecar.py --scrape-storm [--before main]

``--footprint`` prints only the start and RSS rows (no wrk): start to ready, then RSS idle (after a few
single-sample requests), with 1,000 streams, and with Redis.

``--shape TEXT`` keeps only the load rows of the request shapes whose title contains TEXT (``single``,
``samples form``, ``column``, ``wide``): no paced rows, no start or RSS rows -- a quick before/after
of one path.

``--scrape-storm`` runs another table instead: each sidecar with 1,000 streams takes 1,000-sample
bodies for ``--duration`` seconds, alone and then beside ``wrk -c4`` getting ``/metrics`` back to back
(a tight scrape loop on the open metrics port): samples accepted per second, 429s, scrapes per second
and their p99, and how many times the per-stream rows were built.

Rows, per request shape (single sample; 1,000-sample ``{"samples": [...]}`` bodies; 10,000-value column
bodies; 100 ten-feature wide objects): throughput achieved / per server CPU-second, wrk's p99 latency
at saturation, and the sidecar's event-loop stall (p99 / max of its ``driftwatch_event_loop_stall_seconds``
histogram over that run -- the loop's lag less its thread's wait for a CPU -- with the lag's max beside
it; bucket upper bounds). Then p99 at a paced 5,000 requests/s, start to ready (the median of
``--starts`` fresh starts of each server, interleaved, with the CPU time the process used until ready),
and RSS idle and with 1,000 active (key, feature) streams (and with Redis configured, when
``redis-server`` is installed). On a shared machine every load row is the best of ``--repeat``
interleaved runs (the one with most requests per CPU-second), and the load average is printed.
Needs Debian's ``wrk`` (scripts/install-system-deps.sh). Loopback only, bounded in time; progress on
stderr, the table on stdout.

Every tree is byte-compiled before anything starts: an image ships (or writes on first start) its
``.pyc`` files, while a checkout run with ``PYTHONDONTWRITEBYTECODE`` would compile every module from
source at every start and charge that to the sidecar.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
EMPTY_SERVER = """
import sys
from aiohttp import web
BODY = b'{"accepted":1,"rejected":[]}'
async def h(request):
    await request.read()
    return web.Response(body=BODY, status=202, content_type="application/json")
app = web.Application(client_max_size=1 << 20)
app.router.add_post("/v1/samples", h)
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, backlog=1024)
"""
FEATURES = [f"f{i}" for i in range(10)]
#: one stream per request shape (single samples, samples form, column form; the wide objects use
#: FEATURES), each learning its baseline from its own load: a stream whose baseline was another
#: shape's values (the warm-up's one constant, once) is Drifting for the whole run, and the engine's
#: drift work (~0.4 ms per 1,000 samples, several times a Stable stream's) then is most of the row
SHAPE_FEATURES = ["latency_ms", "one_ms", "column_ms"]
LAG = "driftwatch_event_loop_lag_seconds"
STALL = "driftwatch_event_loop_stall_seconds"
LATENCY = "driftwatch_ingest_latency_seconds"


def log(msg: str) -> None:
    print(f"[bench/sidecar] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 30) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body: bytes = r.read()
        return body


def post(url: str, doc: object) -> dict[str, object]:
    req = urllib.request.Request(
        url, data=json.dumps(doc).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        answer: dict[str, object] = json.loads(r.read())
        return answer


def cores() -> tuple[str, str]:
    """(server core, load core): distinct when the machine has two or more."""
    avail = sorted(os.sched_getaffinity(0))
    return (str(avail[0]), str(avail[1] if len(avail) > 1 else avail[0]))


def pinned(core: str, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", core, *cmd] if shutil.which("taskset") else cmd


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- servers ---------------------------------------------------------------------------------------------


@dataclass
class Server:
    """One process under test: the empty handler, or a sidecar from ``root``."""

    name: str
    root: Path | None  # None: the empty aiohttp handler
    core: str
    workdir: Path
    redis_url: str | None = None
    #: with ``spec.scan``: the sidecar keeps sample reservoirs (needs ``redis_url``)
    scan: bool = False
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    ready_s: float = float("nan")  # wall time from spawn to the first 200 from /readyz
    ready_cpu_s: float = float("nan")  # CPU time the process used until then
    has_lag: bool = False  # exports the event-loop lag histogram

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/samples"

    @property
    def sidecar(self) -> bool:
        return self.root is not None

    def start(self, probe_lag: bool = True) -> Server:
        env = {**os.environ, "POD_NAME": "bench"}
        if self.root is None:
            cmd = [PY, "-c", EMPTY_SERVER, str(self.port)]
            probe = None
        else:
            spec: dict[str, object] = {
                "features": [{"name": n, "type": "numeric"} for n in [*SHAPE_FEATURES, *FEATURES]],
                "keys": {"maxKeys": 1000},
            }
            if self.scan:
                spec["scan"] = {"current": "1h", "reference": "7d"}
            config = {
                "monitor": {"name": "bench", "namespace": "bench"},
                "spec": spec,
                "listen": {"host": "127.0.0.1", "port": self.port, "metricsPort": 0},
                "limits": {"queueCapacity": 2_000_000, "allowedLateness": None},
            }  # fmt: skip
            if self.redis_url:
                config["redis"] = {"url": self.redis_url, "keyPrefix": f"bench-{self.port}"}
                config["state"] = {"checkpointInterval": "2s"}
            cfg = self.workdir / f"sidecar-{self.port}.json"
            cfg.write_text(json.dumps(config))
            cmd = [PY, "-m", "driftwatch", "sidecar", "--config", str(cfg), "--log-level", "WARNING"]
            env["PYTHONPATH"] = str(self.root)  # ahead of the editable install: that tree's code
            probe = f"http://127.0.0.1:{self.port}/readyz"
        t0 = time.monotonic()
        self.proc = subprocess.Popen(pinned(self.core, cmd), env=env, cwd=self.root or ROOT)
        self._wait(probe or f"http://127.0.0.1:{self.port}/", t0)
        if self.sidecar and probe_lag:
            self.has_lag = LAG in self.metrics_text()
        return self

    def _wait(self, url: str, t0: float, timeout: float = 30.0) -> None:
        assert self.proc is not None
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(url, timeout=1).read()
            except urllib.error.HTTPError as e:  # the empty server answers 404 on /: it is up
                if e.code != 404:
                    time.sleep(0.005)
                    continue
            except OSError:
                time.sleep(0.005)
                continue
            self.ready_s = time.monotonic() - t0
            self.ready_cpu_s = cpu_seconds(self.proc.pid)
            return
        raise RuntimeError(f"{self.name} did not come up in {timeout:g}s")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def metrics_text(self) -> str:
        return http_get(f"http://127.0.0.1:{self.port}/metrics").decode()

    def histogram(self, name: str) -> dict[float, float]:
        """Cumulative bucket counts by ``le`` of one of the sidecar's histograms."""
        out: dict[float, float] = {}
        pat = re.compile(rf'^{name}_bucket{{.*le="([^"]+)".*}} ([0-9.e+]+)$', re.M)
        for le, v in pat.findall(self.metrics_text()):
            out[float(le)] = float(v)
        return out


def git_tree(ref: str, into: Path) -> Path:
    """``git archive REF`` unpacked into ``into`` (no checkout, no worktree metadata)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    # the compiled loop (detect/_kernel.c) is built by the install, not in git: the same source may
    # reuse this tree's build; another one is built in place
    src = Path("driftwatch/detect/_kernel.c")
    if (into / src).exists():
        if (into / src).read_bytes() == (ROOT / src).read_bytes():
            for built in (ROOT / src.parent).glob("_kernel*.so"):
                shutil.copy2(built, into / src.parent / built.name)
        else:
            include, suffix = sysconfig.get_paths()["include"], sysconfig.get_config_var("EXT_SUFFIX")
            out = into / src.parent / f"_kernel{suffix}"
            cmd = ["cc", "-O2", "-shared", "-fPIC", f"-I{include}", str(into / src), "-o", str(out)]
            subprocess.run(cmd, check=True)
    return into


def byte_compile(root: Path) -> None:
    """``.pyc`` files for a tree's package, as the image has them (``PYTHONDONTWRITEBYTECODE`` on this
    machine would otherwise make every start compile every module from source)."""
    if not compileall.compile_dir(str(root / "driftwatch"), quiet=1):
        raise RuntimeError(f"byte-compiling {root} failed")


def start_times(servers: list[Server], starts: int) -> list[str]:
    """Each server started ``starts`` times afresh, interleaved (one of each, then again), stopped once
    ready: the median spawn-to-ready wall time and, beside it, the median CPU time until ready."""
    walls: list[list[float]] = [[] for _ in servers]
    cpus: list[list[float]] = [[] for _ in servers]
    for _ in range(starts):
        for i, s in enumerate(servers):
            fresh = Server(s.name, s.root, s.core, s.workdir, redis_url=s.redis_url, scan=s.scan)
            try:
                fresh.start(probe_lag=False)
                walls[i].append(fresh.ready_s)
                cpus[i].append(fresh.ready_cpu_s)
            finally:
                fresh.stop()
    return [
        f"{statistics.median(w):.2f} ({statistics.median(c):.2f})" for w, c in zip(walls, cpus, strict=True)
    ]


# --- load --------------------------------------------------------------------------------------------------


@dataclass
class Run:
    rps: float = float("nan")
    ok_rps: float = float("nan")
    per_cpu: float = float("nan")  # accepted requests per server CPU-second
    non2xx: int = 0
    p99_ms: float = float("nan")
    lag_max_ms: float | None = None  # event-loop lag over the run (sidecars with the probe)
    stall_p99_ms: float | None = None  # the lag less the loop thread's wait for a CPU
    stall_max_ms: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


def wrk(
    url: str, body: str, duration: float, conns: int, core: str, delay_ms: float | None = None
) -> tuple[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        if delay_ms:
            f.write(f"function delay() return {delay_ms:.3f} end\n")
        script = f.name
    try:
        cmd = ["wrk", "-t1", f"-c{conns}", f"-d{duration:g}s", "--latency", "-s", script, url]
        t0 = time.monotonic()
        out = subprocess.run(pinned(core, cmd), capture_output=True, text=True, timeout=duration + 30).stdout
        return out, time.monotonic() - t0
    finally:
        os.unlink(script)


def load(
    server: Server, body: str, duration: float, conns: int, core: str, delay_ms: float | None = None
) -> Run:
    """One wrk run against ``server``, with its CPU time and (sidecars) its loop lag over the run."""
    lag0 = server.histogram(LAG) if server.has_lag else {}
    stall0 = server.histogram(STALL) if server.has_lag else {}
    cpu0 = cpu_seconds(server.pid)
    out, _ = wrk(server.url, body, duration, conns, core, delay_ms)
    time.sleep(0.3)  # let the engine worker finish the queue: its CPU belongs to this run
    cpu = cpu_seconds(server.pid) - cpu0
    total = int(_match(r"(\d+) requests in", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = int(non2xx.group(1)) if non2xx else 0
    rps = float(_match(r"Requests/sec:\s+([\d.]+)", out))
    run = Run(
        rps=rps,
        ok_rps=rps * (1 - bad / max(1, total)),
        per_cpu=(total - bad) / cpu if cpu > 0 else float("nan"),
        non2xx=bad,
        p99_ms=_ms(re.search(r"99%\s+([\d.]+)(us|ms|s)", out)),
    )
    if server.has_lag:
        run.lag_max_ms = _quantile(_delta(lag0, server.histogram(LAG)), 1.0) * 1000
        stall = _delta(stall0, server.histogram(STALL))
        run.stall_p99_ms = _quantile(stall, 0.99) * 1000
        run.stall_max_ms = _quantile(stall, 1.0) * 1000
    return run


def _match(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    if m is None:
        raise RuntimeError(f"wrk output without {pattern!r}:\n{text}")
    return m.group(1)


def _ms(m: re.Match[str] | None) -> float:
    if m is None:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def _delta(before: dict[float, float], after: dict[float, float]) -> dict[float, float]:
    return {le: after[le] - before.get(le, 0.0) for le in sorted(after)}


def _quantile(cumulative: dict[float, float], q: float) -> float:
    """Upper bound of the bucket that holds quantile ``q`` (1.0: the largest observation)."""
    total = max(cumulative.values(), default=0.0)
    for le, c in cumulative.items():
        if total and c >= q * total:
            return le
    return float("nan")


def best(servers: list[Server], body: str, duration: float, conns: int, core: str, repeat: int) -> list[Run]:
    """Each server ``repeat`` times, interleaved; each one's run with most requests per CPU-second
    (the least disturbed by the rest of the machine)."""
    runs: list[list[Run]] = [[] for _ in servers]
    for _ in range(repeat):
        for i, s in enumerate(servers):
            runs[i].append(load(s, body, duration, conns, core))
    return [max(rs, key=lambda r: r.per_cpu if r.per_cpu == r.per_cpu else -1.0) for rs in runs]


def paced(server: Server, body: str, duration: float, rate: float, core: str, conns: int = 32) -> Run:
    """An open-ish loop at ``rate`` requests/s: each connection waits between requests; a short probe
    measures the response time so the wait can be shortened by it (wrk's delay() adds to latency)."""
    d0 = 1000.0 * conns / rate
    probe = load(server, body, min(2.0, duration), conns, core, delay_ms=d0)
    latency_ms = max(0.0, 1000.0 * conns / max(probe.rps, 1.0) - d0)
    return load(server, body, duration, conns, core, delay_ms=max(0.01, d0 - latency_ms))


# --- streams ---------------------------------------------------------------------------------------------


def fill_streams(server: Server, keys: int = 100) -> int:
    """1,000 active streams: ``keys`` keys x 10 features, 200 samples each (past the baseline's
    minimum); returns how many streams the sidecar reports once it has applied them all."""
    for k in range(keys):
        post(
            server.url,
            [{"key": f"k{k}", "values": {f: 10.0 + ((k + i) % 7) for f in FEATURES}} for i in range(200)],
        )
    want = keys * len(FEATURES)
    deadline = time.monotonic() + 120
    n = 0
    while time.monotonic() < deadline:
        status = json.loads(http_get(f"http://127.0.0.1:{server.port}/v1/status", timeout=60))
        n = sum(1 for s in status["streams"] if s["key"].startswith("k") and s["samples"] >= 200)
        if n >= want and status["queue"]["depth"] == 0:
            break
        time.sleep(0.5)
    server.metrics_text()  # a scrape, as Prometheus would do: its cost belongs in the figure
    time.sleep(1.0)
    return n


# --- scrape storm ------------------------------------------------------------------------------------------

SCRAPERS = 4
BUILDS = "driftwatch_stream_view_builds_total"


def scrape_wrk(url: str, duration: float, conns: int, core: str) -> subprocess.Popen[str]:
    """``wrk`` getting ``url`` back to back on ``conns`` connections, started in the background."""
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{duration:g}s", "--timeout", "30s", "--latency", url]
    return subprocess.Popen(pinned(core, cmd), stdout=subprocess.PIPE, text=True)


def counter(server: Server, name: str) -> float | None:
    """An unlabelled counter of the sidecar (None: it does not export it)."""
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", server.metrics_text(), re.M)
    return float(m.group(1)) if m else None


def scrape_storm(servers: list[Server], dur: float, repeat: int, core: str) -> list[Row]:
    """Ingest alone, then beside a tight scrape loop, per sidecar (each with 1,000 streams); the best
    of ``repeat`` of each."""
    body = json.dumps(
        {"samples": [{"feature": "latency_ms", "value": 100.0 + (i % 97)} for i in range(1000)]}
    )
    for s in servers:
        log(f"{s.name}: 1,000 streams")
        fill_streams(s)
    quiet: list[Run] = []
    stormy: list[Run] = []
    scrapes: list[str] = []
    builds: list[str] = []
    for s in servers:
        log(f"{s.name}: ingest alone, {repeat} x {dur:g}s")
        quiet.append(max((load(s, body, dur, 8, core) for _ in range(repeat)), key=lambda r: r.ok_rps))
        log(f"{s.name}: ingest beside {SCRAPERS} scrapers in a loop, {repeat} x {dur:g}s")
        best_run: tuple[Run, str, str] | None = None
        for _ in range(repeat):
            b0 = counter(s, BUILDS)
            scraper = scrape_wrk(f"http://127.0.0.1:{s.port}/metrics", dur, SCRAPERS, core)
            run = load(s, body, dur, 8, core)
            out, _ = scraper.communicate(timeout=dur + 60)
            b1 = counter(s, BUILDS)
            n = int(_match(r"(\d+) requests in", out))
            p99 = _ms(re.search(r"99%\s+([\d.]+)(us|ms|s)", out))
            built = "n/a" if b0 is None or b1 is None else f"{b1 - b0:.0f} for {n + 5:,} scrapes"
            cells = (run, f"{n:,} ({n / dur:,.1f}/s), p99 {p99:,.0f} ms", built)
            if best_run is None or run.ok_rps > best_run[0].ok_rps:
                best_run = cells
        assert best_run is not None
        stormy.append(best_run[0])
        scrapes.append(best_run[1])
        builds.append(best_run[2])
    ratio = [f"{b.ok_rps / q.ok_rps:.2f}" if q.ok_rps else "n/a" for q, b in zip(quiet, stormy, strict=True)]
    return [
        Row("ingest alone: samples/s (achieved / per CPU-s)", [fmt_rate(r, 1000) for r in quiet]),
        Row(
            f"ingest beside {SCRAPERS} scrapers in a loop: samples/s (achieved / per CPU-s)",
            [fmt_rate(r, 1000) for r in stormy],
            "",
            "no 429",
        ),
        Row("  accepted with the scrapers / alone", ratio, "", ">= 0.8"),
        Row("  scrapes answered (p99)", scrapes),
        Row("  per-stream row builds during those scrapes", builds, "", "a few"),
    ]


# --- the table ----------------------------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    cells: list[str]
    ratio: str = ""
    target: str = ""


def fmt_rate(r: Run, per: int = 1) -> str:
    text = f"{r.ok_rps * per:,.0f} / {r.per_cpu * per:,.0f}"
    return text + (f" ({r.non2xx} non-2xx)" if r.non2xx else "")


def fmt_lag(r: Run, server: Server) -> str:
    if not server.sidecar:
        return ""
    if r.stall_p99_ms is None or r.stall_max_ms is None or r.lag_max_ms is None:
        return "n/a (no probe)"
    return f"<= {r.stall_p99_ms:g} / <= {r.stall_max_ms:g} (lag <= {r.lag_max_ms:g})"


def shape_rows(
    title: str, servers: list[Server], runs: list[Run], per: int, rate_target: str, lag_target: str
) -> list[Row]:
    """Throughput, p99 at saturation and loop lag of one request shape; ratios are the last sidecar
    against the empty handler."""
    empty, mine = runs[0], runs[-1]
    ratio = mine.per_cpu / empty.per_cpu if empty.per_cpu else float("nan")
    p99_ratio = mine.p99_ms / empty.p99_ms if empty.p99_ms else float("nan")
    unit = "requests/s" if per == 1 else "samples/s"
    lags = [fmt_lag(r, s) for r, s in zip(runs, servers, strict=True)]
    rates = [fmt_rate(r, per) for r in runs]
    p99s = [f"{r.p99_ms:.2f}" for r in runs]
    return [
        Row(f"{title}: {unit} (achieved / per CPU-s)", rates, f"{ratio:.2f}", rate_target),
        Row(f"{title}: p99 latency at saturation (ms)", p99s, f"{p99_ratio:.1f}x", "<= 3x"),
        Row(f"{title}: event-loop stall p99 / max (ms)", lags, "", lag_target),
    ]


def print_table(head: list[str], rows: list[Row]) -> None:
    table = [head, *[[r.measure, *r.cells, r.ratio, r.target] for r in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for i, r in enumerate(table):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if i == 0:
            print("| " + " | ".join("-" * w for w in widths) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    ap.add_argument("--repeat", type=int, default=2, help="interleaved runs per row, each server's best kept")
    ap.add_argument("--before", metavar="REF", help="also run the sidecar of this git commit (e.g. main)")
    ap.add_argument("--quick", action="store_true", help="1 s runs, no repeats (smoke test: noisy numbers)")
    ap.add_argument("--starts", type=int, default=5, help="fresh starts per server, start to ready's median")
    ap.add_argument(
        "--footprint",
        action="store_true",
        help="instead: only start to ready and the RSS rows (no wrk load)",
    )
    ap.add_argument(
        "--shape",
        metavar="TEXT",
        help="instead: only the load rows of the request shapes whose title contains TEXT",
    )
    ap.add_argument(
        "--scan",
        action="store_true",
        help="also this tree's sidecar with Redis, without and with spec.scan (the scan reservoirs' cost)",
    )
    ap.add_argument(
        "--scrape-storm",
        action="store_true",
        help="instead: ingest alone and beside a tight /metrics loop, 1,000 streams (this tree, --before)",
    )
    args = ap.parse_args()
    dur = 1.0 if args.quick else args.duration
    repeat = 1 if args.quick else args.repeat
    starts = 1 if args.quick else max(1, args.starts)
    if not args.footprint and not shutil.which("wrk"):
        print("bench/sidecar.py needs wrk: bash scripts/install-system-deps.sh", file=sys.stderr)
        return 1
    srv_core, load_core = cores()
    if srv_core != load_core:  # the bench's own polling and posting stay off the servers' core
        os.sched_setaffinity(0, {int(load_core)})
    tmp = Path(tempfile.mkdtemp(prefix="dw-bench-"))
    if args.scrape_storm:
        return storm_table(args.before, dur, repeat, srv_core, load_core, tmp)
    servers = [Server("empty aiohttp", None, srv_core, tmp)]
    if args.before:
        servers.append(Server(f"sidecar {args.before}", git_tree(args.before, tmp / "before"), srv_core, tmp))
    servers.append(Server("sidecar", ROOT, srv_core, tmp))
    rows: list[Row] = []
    stops: list[Callable[[], None]] = []
    if args.scan:
        from driftwatch.devcluster.stack import RedisServer

        redis = RedisServer().start()
        stops.append(redis.stop)
        servers.append(Server("sidecar, Redis", ROOT, srv_core, tmp, redis_url=redis.url))
        servers.append(
            Server("sidecar, Redis, spec.scan", ROOT, srv_core, tmp, redis_url=redis.url, scan=True)
        )
    try:
        for root in {s.root for s in servers if s.root is not None}:
            log(f"byte-compiling {root}")
            byte_compile(root)
        if args.shape:
            for s in servers:
                log(f"starting {s.name}")
                s.start()
                stops.append(s.stop)
            rows += load_rows(servers, dur, repeat, load_core, args.shape)
            print(
                f"sidecar bench, shapes matching {args.shape!r}: servers on core {srv_core}, wrk on core "
                f"{load_core}, {dur:g}s per run, best of {repeat}, load average {os.getloadavg()[0]:.1f}"
            )
            print_table(["measure", *[s.name for s in servers], "sidecar / empty", "target"], rows)
            return 0
        log(f"start to ready: {starts} fresh starts per server, interleaved")
        ready = start_times(servers, starts)
        for s in servers:
            log(f"starting {s.name}")
            s.start()
            stops.append(s.stop)
        if args.footprint:
            log("warm-up: 20 single-sample requests")
            for s in servers:  # the first requests pay lazy imports and the engine's first allocations
                for _ in range(20):
                    post(s.url, {"samples": [{"feature": "latency_ms", "value": 123.4}]})
        else:
            rows += load_rows(servers, dur, repeat, load_core)
        rows.append(Row(f"start to ready, s (CPU s until then), median of {starts}", ready, "", "< 0.5"))
        idle = [rss_mb(s.pid) for s in servers]
        rows.append(Row("RSS idle (MB)", [f"{v:.0f}" for v in idle]))
        log("1,000 streams")
        cells = [f"{idle[0]:.0f} (idle)"]
        for s in servers[1:]:
            n = fill_streams(s)
            cells.append(f"{rss_mb(s.pid):.0f} ({n} streams)")
        rows.append(Row("RSS with 1,000 active streams (MB)", cells, "", "<= 60"))
        rows += redis_rss(servers, tmp, stops)
    finally:
        for stop in reversed(stops):
            with contextlib.suppress(Exception):
                stop()
        shutil.rmtree(tmp, ignore_errors=True)

    if args.footprint:
        print("start to ready: spawn to the first 200 from /readyz (the empty handler: its first answer),")
        print("median wall time of fresh starts with the median CPU time until then in brackets; RSS idle:")
        print("after 20 single-sample requests")
        print(
            f"sidecar footprint: servers on core {srv_core}, {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f} at the end"
        )
    else:
        print("cells: achieved / per server CPU-second (what one dedicated core delivers); p99: wrk, best")
        print("run; event-loop stall: the sidecar's own probe, lag less the loop thread's wait for a CPU")
        print("(the lag's max in brackets), bucket upper bounds; ratios: sidecar / empty aiohttp")
        print(
            f"sidecar bench: servers on core {srv_core}, wrk on core {load_core}, {dur:g}s per run, best of "
            f"{repeat}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end"
        )
    print_table(["measure", *[s.name for s in servers], "sidecar / empty", "target"], rows)
    return 0


def load_rows(
    servers: list[Server], dur: float, repeat: int, load_core: str, only: str | None = None
) -> list[Row]:
    """The wrk rows: each request shape at saturation, then p99 at a paced 5,000 requests/s (``only``:
    just the shapes whose title contains it, no paced rows)."""
    rows: list[Row] = []
    one = json.dumps({"samples": [{"feature": "one_ms", "value": 123.4}]})
    log("warm-up")
    for s in servers:  # the first requests pay lazy imports and the engine's first allocations
        load(s, one, 1, 8, load_core)

    samples = [{"feature": "latency_ms", "value": 100.0 + (i % 97)} for i in range(1000)]
    column = {"feature": "column_ms", "values": [100.0 + (i % 97) * 0.5 for i in range(10_000)]}
    wide = [{"values": {f: 10.0 + (i % 13) for f in FEATURES}} for i in range(100)]
    shapes: list[tuple[str, str, int, int, str]] = [
        ("single sample", one, 32, 1, ">= 0.8"),
        ("samples form, 1,000/body", json.dumps({"samples": samples}), 8, 1000, ">= 1,500,000"),
        ("column form, 10,000/body", json.dumps(column), 4, 10_000, ""),
        ("100 x 10-feature wide objects", json.dumps(wide), 8, 1000, ""),
    ]
    for title, body, conns, per, target in shapes:
        if only is not None and only not in title:
            continue
        log(f"{title}: {repeat} x {dur:g}s per server")
        runs = best(servers, body, dur, conns, load_core, repeat)
        rows += shape_rows(title, servers, runs, per, target, "max <= 10")
    if only is not None:
        return rows

    log("paced 5,000 requests/s")
    calm: list[Run] = []
    handler: list[str] = []
    for s in servers:
        before = s.histogram(LATENCY) if s.sidecar else {}
        tries = [paced(s, one, dur, 5000, load_core) for _ in range(repeat)]
        calm.append(min(tries, key=lambda r: r.p99_ms))  # each server's calmest run
        own = _quantile(_delta(before, s.histogram(LATENCY)), 0.99) if s.sidecar else float("nan")
        handler.append(f"; handler <= {own * 1000:g}" if s.sidecar else "")
    rows.append(
        Row(
            "p99 latency at a paced 5,000 requests/s (ms)",
            [f"{r.p99_ms:.2f} ({r.rps:,.0f}/s){h}" for r, h in zip(calm, handler, strict=True)],
            "",
            "< 5",
        )
    )
    rows.append(
        Row(
            "  event-loop stall p99 / max at 5,000 requests/s (ms)",
            [fmt_lag(r, s) for r, s in zip(calm, servers, strict=True)],
            "",
            "max <= 10",
        )
    )
    return rows


def storm_table(before: str | None, dur: float, repeat: int, srv_core: str, load_core: str, tmp: Path) -> int:
    servers = []
    if before:
        servers.append(Server(f"sidecar {before}", git_tree(before, tmp / "before"), srv_core, tmp))
    servers.append(Server("sidecar", ROOT, srv_core, tmp))
    try:
        for s in servers:
            assert s.root is not None
            byte_compile(s.root)
            log(f"starting {s.name}")
            s.start()
        rows = scrape_storm(servers, dur, repeat, load_core)
    finally:
        for s in servers:
            with contextlib.suppress(Exception):
                s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("cells: samples accepted (2xx) per second / per server CPU-second; 1,000-sample bodies on 8")
    print(f"connections; scrapers: wrk -c{SCRAPERS} on /metrics, back to back; row builds: the sidecar's")
    print(f"{BUILDS} over the storm, whose scrapes include the bench's own 5 reads ('n/a': the sidecar")
    print("does not export it)")
    print(
        f"scrape-storm bench: servers on core {srv_core}, wrk on core {load_core}, {dur:g}s per run, best of "
        f"{repeat}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end"
    )
    print_table(["measure", *[s.name for s in servers], "", "target"], rows)
    return 0


def redis_rss(servers: list[Server], tmp: Path, stops: list[Callable[[], None]]) -> list[Row]:
    """RSS with Redis configured (redis-py is imported only then), 1,000 streams, after checkpoints."""
    if shutil.which("redis-server") is None:
        return []
    from driftwatch.devcluster.stack import RedisServer

    log("1,000 streams with Redis configured")
    redis = RedisServer().start()
    stops.append(redis.stop)
    cells = [""]
    for s in servers[1:]:
        r = Server(s.name, s.root, s.core, tmp, redis_url=redis.url).start()
        stops.append(r.stop)
        n = fill_streams(r)
        time.sleep(3)  # a checkpoint (every 2 s here) has been written since
        cells.append(f"{rss_mb(r.pid):.0f} ({n} streams)")
        r.stop()
    return [Row("RSS with Redis, 1,000 streams, after a checkpoint (MB)", cells, "", "<= 60")]


if __name__ == "__main__":
    sys.exit(main())

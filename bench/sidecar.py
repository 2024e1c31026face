"""Sidecar ingest benchmark: one sidecar process pinned to one core, load from ``wrk`` on the other.

Side by side in the same run, an empty aiohttp handler (same loop, same 202 body: the framework's
ceiling on this machine) and the sidecar, so the fraction says what our code costs, whatever the box.

    .venv/bin/python bench/sidecar.py [--duration 5] [--quick]

Rows: single-sample requests/s; batched samples/s (1,000 samples per body in the envelope form,
10,000 in the column form, 100 ten-feature wide objects); p99 ingest latency at a paced 5,000
requests/s; RSS with 1,000 active (key, feature) streams. On a shared machine every row is the best
of ``--repeat`` interleaved runs, and the load average is printed with the table.
Needs Debian's ``wrk`` (scripts/install-system-deps.sh). Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def cores() -> tuple[str, str]:
    """(server core, load core): distinct when the machine has two or more."""
    avail = sorted(os.sched_getaffinity(0))
    return (str(avail[0]), str(avail[1] if len(avail) > 1 else avail[0]))


def pinned(core: str, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", core, *cmd] if shutil.which("taskset") else cmd


def wrk(
    url: str,
    body: str,
    duration: float,
    conns: int,
    core: str,
    rate: float | None = None,
    delay_ms: float | None = None,
    pid: int | None = None,
) -> dict[str, float]:
    """Run wrk with a POST body; ``rate`` paces each connection (wrk's delay()) to that total rate.
    With ``pid``, also the server's CPU time for the run: ``per_cpu`` is accepted requests per
    CPU-second of the server, what one dedicated core would deliver — robust on a shared machine."""
    cpu0 = cpu_seconds(pid) if pid else 0.0
    if rate and delay_ms is None:
        delay_ms = 1000.0 * conns / rate
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        if delay_ms:
            f.write(f"function delay() return {delay_ms:.3f} end\n")
        script = f.name
    try:
        cmd = ["wrk", "-t1", f"-c{conns}", f"-d{duration:g}s", "--latency", "-s", script, url]
        out = subprocess.run(pinned(core, cmd), capture_output=True, text=True, timeout=duration + 30).stdout
    finally:
        os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = int(non2xx.group(1)) if non2xx else 0
    p99 = _ms(re.search(r"99%\s+([\d.]+)(us|ms|s)", out))
    p50 = _ms(re.search(r"50%\s+([\d.]+)(us|ms|s)", out))
    per_cpu = float("nan")
    if pid:
        time.sleep(0.3)  # let the engine worker finish the queue: its CPU belongs to this run
        cpu = cpu_seconds(pid) - cpu0
        per_cpu = (total - bad) / cpu if cpu > 0 else float("nan")
    return {
        "per_cpu": per_cpu,
        "rps": rps,
        "ok_rps": rps * (1 - bad / max(1, total)),
        "non2xx": bad,
        "p99_ms": p99,
        "p50_ms": p50,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ok(r: dict[str, float], per_request: int = 1) -> str:
    """Accepted throughput achieved / per server CPU-second, and non-2xx answers (429s) if any."""
    text = f"{r['ok_rps'] * per_request:,.0f} / {r['per_cpu'] * per_request:,.0f}"
    return text + (f" ({r['non2xx']:.0f} non-2xx)" if r["non2xx"] else "")


def paced(url: str, body: str, duration: float, rate: float, core: str, conns: int = 32) -> dict[str, float]:
    """An open-ish loop at ``rate`` requests/s: each connection waits between requests; a 2 s probe
    measures the response time so the wait can be shortened by it (wrk's delay() adds to latency)."""
    d0 = 1000.0 * conns / rate
    probe = wrk(url, body, min(2.0, duration), conns, core, delay_ms=d0)
    latency_ms = max(0.0, 1000.0 * conns / max(probe["rps"], 1.0) - d0)
    return wrk(url, body, duration, conns, core, delay_ms=max(0.01, d0 - latency_ms))


def best(runs: list[tuple], repeat: int) -> list[dict[str, float]]:
    """Run each (url, body, duration, conns, core, pid) ``repeat`` times, interleaved; keep each one's
    run with the most requests per CPU-second (the least disturbed by other processes)."""
    out: list[dict[str, float]] = [{} for _ in runs]
    for _ in range(repeat):
        for i, (url, body, duration, conns, core, pid) in enumerate(runs):
            got = wrk(url, body, duration, conns, core, pid=pid)
            if not out[i] or got["per_cpu"] > out[i]["per_cpu"]:
                out[i] = got
    return out


def _ms(m: re.Match[str] | None) -> float:
    if m is None:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def handler_buckets(port: int) -> dict[float, float]:
    """The sidecar's own ``driftwatch_ingest_latency_seconds`` buckets (cumulative, by ``le``)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[float, float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "driftwatch_ingest_latency_seconds":
            for s in fam.samples:
                if s.name.endswith("_bucket"):
                    out[float(s.labels["le"])] = s.value
    return out


def quantile_bound(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """Upper bound of the bucket holding quantile ``q`` of the observations made between two reads:
    the time our handler spent (read, validate, enqueue), without the machine's scheduling delays."""
    les = sorted(after)
    delta = [after[le] - before.get(le, 0.0) for le in les]
    total = delta[-1] if delta else 0.0
    for le, cum in zip(les, delta, strict=True):
        if total and cum >= q * total:
            return le
    return float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def post(url: str, doc: object) -> dict[str, object]:
    req = urllib.request.Request(
        url, data=json.dumps(doc).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        answer: dict[str, object] = json.loads(r.read())
        return answer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    ap.add_argument("--quick", action="store_true", help="1 s runs, no repeats (smoke test: noisy numbers)")
    ap.add_argument(
        "--repeat", type=int, default=2, help="interleaved runs per row, each server's best kept (default 2)"
    )
    args = ap.parse_args()
    dur = 1.0 if args.quick else args.duration
    if args.quick:
        args.repeat = 1
    if not shutil.which("wrk"):
        print("bench/sidecar.py needs wrk: bash scripts/install-system-deps.sh", file=sys.stderr)
        return 1
    srv_core, load_core = cores()
    tmp = Path(tempfile.mkdtemp(prefix="dw-bench-"))
    sport, eport = free_port(), free_port()
    features = [f"f{i}" for i in range(10)]
    config = {
        "monitor": {"name": "bench", "namespace": "bench"},
        "spec": {"features": [{"name": n, "type": "numeric"} for n in ["latency_ms", *features]],
                 "keys": {"maxKeys": 1000}},
        "listen": {"host": "127.0.0.1", "port": sport, "metricsPort": 0},
        "limits": {"queueCapacity": 2_000_000, "allowedLateness": None},
    }  # fmt: skip
    (tmp / "sidecar.json").write_text(json.dumps(config))
    env = {**os.environ, "POD_NAME": "bench"}
    procs = [
        subprocess.Popen(pinned(srv_core, [PY, "-c", EMPTY_SERVER, str(eport)]), env=env),
        subprocess.Popen(
            pinned(
                srv_core,
                [
                    PY,
                    "-m",
                    "driftwatch",
                    "sidecar",
                    "--config",
                    str(tmp / "sidecar.json"),
                    "--log-level",
                    "WARNING",
                ],
            ),
            env=env,
            cwd=ROOT,
        ),
    ]
    rows: list[tuple[str, str, str, str, str]] = []
    try:
        surl, eurl = f"http://127.0.0.1:{sport}/v1/samples", f"http://127.0.0.1:{eport}/v1/samples"
        wait_http(f"http://127.0.0.1:{sport}/healthz")
        time.sleep(0.5)
        one = json.dumps({"samples": [{"feature": "latency_ms", "value": 123.4}]})
        # warm-up (first requests pay imports and the engine's first allocation)
        wrk(surl, one, 1, 8, load_core)
        wrk(eurl, one, 1, 8, load_core)

        # the box may be shared: alternate the two servers and keep each one's best run
        epid, spid = procs[0].pid, procs[1].pid
        e1, s1 = best(
            [(eurl, one, dur, 32, load_core, epid), (surl, one, dur, 32, load_core, spid)], args.repeat
        )
        rows.append(
            (
                "single-sample requests/s",
                ok(e1),
                ok(s1),
                f"{s1['per_cpu'] / e1['per_cpu']:.2f}",
                ">= 10,000; fraction >= 0.7",
            )
        )

        batch = json.dumps(
            {"samples": [{"feature": "latency_ms", "value": 100.0 + (i % 97)} for i in range(1000)]}
        )
        eb, sb = best(
            [(eurl, batch, dur, 8, load_core, epid), (surl, batch, dur, 8, load_core, spid)], args.repeat
        )
        rows.append(
            (
                "batched samples/s (1000/body, samples form)",
                ok(eb, 1000),
                ok(sb, 1000),
                f"{sb['per_cpu'] / eb['per_cpu']:.2f}",
                ">= 1,000,000",
            )
        )

        column = json.dumps(
            {"feature": "latency_ms", "values": [100.0 + (i % 97) * 0.5 for i in range(10_000)]}
        )
        ec, scol = best(
            [(eurl, column, dur, 4, load_core, epid), (surl, column, dur, 4, load_core, spid)], args.repeat
        )
        rows.append(
            (
                "batched samples/s (column form, 10,000/body)",
                ok(ec, 10_000),
                ok(scol, 10_000),
                f"{scol['per_cpu'] / ec['per_cpu']:.2f}",
                ">= 1,000,000",
            )
        )

        wide = json.dumps([{"values": {f: 10.0 + (i % 13) for f in features}} for i in range(100)])
        ew, sw = best(
            [(eurl, wide, dur, 8, load_core, epid), (surl, wide, dur, 8, load_core, spid)], args.repeat
        )
        rows.append(
            (
                "batched samples/s (100 x 10-feature wide objects)",
                ok(ew, 1000),
                ok(sw, 1000),
                f"{sw['per_cpu'] / ew['per_cpu']:.2f}",
                ">= 1,000,000",
            )
        )

        ep: dict[str, float] = {}
        sp: dict[str, float] = {}
        before = handler_buckets(sport)
        for _ in range(args.repeat):  # keep each server's calmest run (lowest p99)
            e, s = paced(eurl, one, dur, 5000, load_core), paced(surl, one, dur, 5000, load_core)
            ep = e if not ep or e["p99_ms"] < ep["p99_ms"] else ep
            sp = s if not sp or s["p99_ms"] < sp["p99_ms"] else sp
        own = quantile_bound(before, handler_buckets(sport), 0.99)
        rows.append(
            (
                "p99 latency at 5,000 req/s (ms)",
                f"{ep['p99_ms']:.2f} ({ep['rps']:,.0f}/s)",
                f"{sp['p99_ms']:.2f} ({sp['rps']:,.0f}/s); handler <= {own * 1000:g}",
                "",
                "< 5 ms",
            )
        )

        idle_rss = rss_mb(procs[1].pid)
        # 1,000 active streams: 100 keys x 10 features, 200 samples each (past the baseline's minimum)
        for k in range(100):
            post(
                surl,
                [{"key": f"k{k}", "values": {f: 10.0 + ((k + i) % 7) for f in features}} for i in range(200)],
            )
        time.sleep(1.0)
        status = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{sport}/v1/status", timeout=30).read())
        n_streams = sum(1 for s in status["streams"] if s["key"].startswith("k"))
        rows.append(
            (
                "RSS with 1,000 active streams (MB)",
                f"{rss_mb(procs[0].pid):.0f} (idle)",
                f"{rss_mb(procs[1].pid):.0f} ({n_streams} streams; {idle_rss:.0f} with 1)",
                "",
                "< 100 MB",
            )
        )
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    head = ("measure", "empty aiohttp", "sidecar", "fraction (per CPU-s)", "target")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    print("cells: achieved / per server CPU-second (what one dedicated core delivers); p99: best run")
    print(
        f"sidecar bench: server on core {srv_core}, wrk on core {load_core}, "
        f"{dur:g}s per run, best of {args.repeat}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

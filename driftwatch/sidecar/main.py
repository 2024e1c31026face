"""``driftwatch sidecar --config FILE``: serve until SIGTERM, then shut down gracefully.

Shutdown order matters for "nothing accepted is lost": stop listening first (no new samples), then
drain the queue into the engine, then checkpoint to Redis, then exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys

from driftwatch.sidecar import settings as settings_mod
from driftwatch.sidecar import tls
from driftwatch.sidecar.memory import limit_arenas, single_threaded_blas
from driftwatch.vocab.spec import ConfigError

log = logging.getLogger("driftwatch.sidecar")


async def serve(s: settings_mod.Settings) -> int:
    # aiohttp is loaded by main() through tls.import_aiohttp (without the system's CAs); numpy loads here
    from aiohttp import web

    from driftwatch.sidecar.runtime import Runtime

    # The engine runs on a thread of its own (worker.py). While it holds the GIL, the event loop waits
    # up to this long for it after every poll: 1 ms instead of Python's 5 keeps those waits far below
    # the 10 ms stall budget, at a cost only when both threads have work.
    sys.setswitchinterval(0.001)
    limit_arenas()  # before the engine thread starts: see memory.py
    rt = Runtime(s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    try:
        await rt.start()
    except Exception as e:  # e.g. unreadable baseline ConfigMap data: refuse to run rather than guess
        log.error("cannot start: %s", e)
        await rt.stop(save=False)
        return 2
    # Everything allocated so far (numpy, aiohttp, a restored engine) lives for the whole run: move it
    # out of the collector's sight, so a full collection scans only what requests create and never
    # stalls the loop for tens of milliseconds. (No gc.collect() first: at this point it finds a few
    # dozen objects and costs ~30 ms of start-up.)
    gc.freeze()
    # shutdown_timeout: how long the last cleanup waits for handlers still running (a slow upload is
    # answered 503 when it completes); aiohttp's default of 60 s is longer than the pod's grace period
    runners = [
        web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0) for app in rt.apps()
    ]
    for runner in runners:
        await runner.setup()
    main_site = web.TCPSite(runners[0], s.host, s.port, backlog=1024)
    await main_site.start()
    if s.metrics_port is not None:
        await web.TCPSite(runners[1], s.metrics_host, s.metrics_port).start()
    log.info(
        "sidecar %s/%s pod %s listening on %s:%d (metrics %s), redis %s",
        s.namespace, s.monitor, s.pod, s.host, s.port,
        f"{s.metrics_host}:{s.metrics_port}" if s.metrics_port else "on the main port",
        ("available" if rt.redis.up else "unavailable") if rt.redis is not None else "not configured",
    )  # fmt: skip
    await stop.wait()
    log.info("shutting down: stop accepting, drain, checkpoint")
    rt.ingest.accepting = False
    await main_site.stop()  # no new connections; in-flight requests finish
    await rt.stop()
    for runner in runners:
        with contextlib.suppress(Exception):
            await runner.cleanup()
    log.info("stopped")
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="driftwatch sidecar",
        description="Run the detector sidecar beside an app.",
        epilog="exit codes:\n  0  stopped (SIGTERM)\n  1  cannot serve (a port in use)\n"
        "  2  bad option or config",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--config", required=True, help="sidecar config file (YAML or JSON, docs/contracts.md section 3)"
    )
    ap.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="DEBUG, INFO (default), WARNING or ERROR",
    )
    args = ap.parse_args(argv)
    single_threaded_blas()  # before anything imports numpy (the runtime does, in serve)
    tls.import_aiohttp()  # before anything imports aiohttp: see tls.py
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        s = settings_mod.load(args.config)
    except ConfigError as e:
        print(f"driftwatch sidecar: config error: {e}", file=sys.stderr)
        return 2
    try:
        import uvloop  # libuv's loop: roughly doubles the request rate aiohttp can serve on one core
    except ImportError:
        uvloop = None  # type: ignore[assignment]
    try:
        return uvloop.run(serve(s)) if uvloop is not None else asyncio.run(serve(s))
    except OSError as e:  # e.g. port in use
        print(f"driftwatch sidecar: {e}", file=sys.stderr)
        return 1

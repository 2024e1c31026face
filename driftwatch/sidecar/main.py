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

from aiohttp import web

from driftwatch.config import ConfigError
from driftwatch.sidecar import settings as settings_mod

log = logging.getLogger("driftwatch.sidecar")


async def serve(s: settings_mod.Settings) -> int:
    from driftwatch.sidecar.app import build_app, build_metrics_app
    from driftwatch.sidecar.metrics import build_registry
    from driftwatch.sidecar.runtime import Sidecar

    sc = Sidecar(s)
    registry = build_registry(sc)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    try:
        await sc.start()
    except Exception as e:  # e.g. unreadable baseline ConfigMap data: refuse to run rather than guess
        log.error("cannot start: %s", e)
        await sc.stop(save=False)
        return 2
    # Everything allocated so far (numpy, scipy, aiohttp, a restored engine) lives for the whole run:
    # move it out of the collector's sight, so a full collection scans only what requests create and
    # never stalls the loop for tens of milliseconds.
    gc.collect()
    gc.freeze()
    runners = [web.AppRunner(build_app(sc, registry), access_log=None, handle_signals=False)]
    if s.metrics_port is not None:
        runners.append(web.AppRunner(build_metrics_app(sc, registry), access_log=None, handle_signals=False))
    sites = []
    for runner in runners:
        await runner.setup()
    main_site = web.TCPSite(runners[0], s.host, s.port, backlog=1024)
    await main_site.start()
    sites.append(main_site)
    if s.metrics_port is not None:
        msite = web.TCPSite(runners[1], s.metrics_host, s.metrics_port)
        await msite.start()
        sites.append(msite)
    log.info(
        "sidecar %s/%s pod %s listening on %s:%d (metrics %s), redis %s",
        s.namespace, s.monitor, s.pod, s.host, s.port,
        f"{s.metrics_host}:{s.metrics_port}" if s.metrics_port else "on the main port",
        "available" if sc.redis_up else ("unavailable" if s.redis_url else "not configured"),
    )  # fmt: skip
    await stop.wait()
    log.info("shutting down: stop accepting, drain, checkpoint")
    sc.accepting = False
    await main_site.stop()  # no new connections; in-flight requests finish
    await sc.stop()
    for runner in runners:
        with contextlib.suppress(Exception):
            await runner.cleanup()
    log.info("stopped")
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="driftwatch sidecar", description="Run the detector sidecar beside an app."
    )
    ap.add_argument(
        "--config", required=True, help="sidecar config file (YAML or JSON, docs/contracts.md section 3)"
    )
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = ap.parse_args(argv)
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

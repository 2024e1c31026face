"""``driftwatch scan NAMESPACE/NAME``: the batch drift tests of a DriftMonitor's scan, once.

The command the monitor's scan CronJob runs (the operator renders ``spec.scan`` into it): the current
window against the reference window (``spec.scan.reference``: the baseline's samples, the same hours a
duration ago, or a fixed START/END), over the samples the monitor's sidecars keep in Redis, with the
tests, effect floor and multiple-testing control of ``driftwatch compare``. It writes
``status.lastScan`` (time, windows, per-feature results), ``status.scans`` (the last few) and the
monitor's history; the operator posts the Event, counts the metrics and sends the alerts.

Credentials: a kubeconfig, else the pod's ServiceAccount; Redis from ``--redis-url`` or
``DRIFTWATCH_REDIS_URL`` (with ``DRIFTWATCH_REDIS_USERNAME`` / ``DRIFTWATCH_REDIS_PASSWORD`` when the
URL carries no login). Neither the URL nor a password is ever printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time

from redis.exceptions import RedisError

from driftwatch import cliopts
from driftwatch.kube import credentials
from driftwatch.kube.client import Kube
from driftwatch.redisconn import AnyRedis, connect_url
from driftwatch.scans import scan_job
from driftwatch.scans.scan_status import EXIT_CODES, FAILED, NO_DRIFT, ScanResult

EPILOG = """exit codes:
  0  no drift
  1  drift: at least one feature drifted
  2  not enough data: no feature had spec.scan.minSamples values in both windows (or no samples at all)
  3  error: the monitor, Redis or the API server could not be read or written
With --job (the CronJob's Jobs): 0 whenever the scan ran -- its result is in status.lastScan, a drift
is not a failed Job -- and 3 on error.
"""
ENV_REDIS_URL = "DRIFTWATCH_REDIS_URL"
ENV_KEY_PREFIX = "DRIFTWATCH_KEY_PREFIX"
#: seconds for the whole scan's Redis work before it counts as failed
REDIS_TIMEOUT = 120.0

log = logging.getLogger("driftwatch.scan")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="driftwatch scan",
        description="The batch drift tests of a DriftMonitor's scan, once: what its scan CronJob runs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("monitor", help="the DriftMonitor: NAME (in the namespace of -n) or NAMESPACE/NAME")
    p.add_argument("--redis-url", default=None, metavar="URL", help=f"the Redis (default ${ENV_REDIS_URL})")
    p.add_argument(
        "--key-prefix", default=None, help=f"Redis key prefix (default ${ENV_KEY_PREFIX}, else driftwatch)"
    )
    p.add_argument("--json", action="store_true", help="print status.lastScan as JSON")
    p.add_argument(
        "--dry-run", action="store_true", help="compare and print; write neither status nor history"
    )
    p.add_argument("--job", action="store_true", help="as the scan CronJob runs it: exit 0 unless an error")
    cliopts.add_kube_options(p)
    return p


def redis_client(url: str) -> AnyRedis:
    """A client for ``url`` (one server, Sentinel or Cluster); the login and CA from the environment
    (``DRIFTWATCH_REDIS_*``, the monitor's Secret in the scan Job), as the sidecar's."""
    return connect_url(url, socket_timeout=10, socket_connect_timeout=5)


async def scan(args: argparse.Namespace, creds: credentials.Credentials, url: str) -> ScanResult:
    namespace, name = args.monitor.split("/")
    prefix = args.key_prefix or os.environ.get(ENV_KEY_PREFIX) or "driftwatch"
    target = scan_job.Target(namespace, name, prefix)
    now = time.time()
    redis = redis_client(url)
    async with Kube(creds) as kube:
        try:
            try:
                _, spec = await scan_job.read_monitor(kube, target)
            except scan_job.ScanError as e:
                return scan_job.failed(now, str(e))  # no monitor (or no scan) to write to
            keep = spec.history
            try:
                result = await asyncio.wait_for(scan_job.run_scan(redis, target, spec, now), REDIS_TIMEOUT)
            except scan_job.ScanError as e:
                result = scan_job.failed(now, str(e))
            except (RedisError, OSError, TimeoutError) as e:  # class names only: a message may quote the URL
                result = scan_job.failed(now, f"Redis unavailable ({type(e).__name__})")
            if not args.dry_run:
                try:
                    await scan_job.record(redis, target, result)
                except (RedisError, OSError, TimeoutError) as e:
                    log.warning("history not written: Redis unavailable (%s)", type(e).__name__)
                try:
                    await scan_job.write_status(kube, target, result, keep)
                except scan_job.ScanError as e:
                    return scan_job.failed(now, str(e))
            return result
        finally:
            await redis.aclose()


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        return EXIT_CODES[NO_DRIFT] if not e.code else EXIT_CODES[FAILED]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    url = args.redis_url or os.environ.get(ENV_REDIS_URL)
    if not url:
        print(f"driftwatch scan: error: no Redis: set --redis-url or ${ENV_REDIS_URL}", file=sys.stderr)
        return EXIT_CODES[FAILED]
    try:
        target = cliopts.resolve(args)
        creds = target.creds
        namespace, name = cliopts.monitor_ref(args.monitor, target.namespace, args.namespace)
    except cliopts.UsageError as e:
        print(f"driftwatch scan: error: {e}", file=sys.stderr)
        return EXIT_CODES[FAILED]
    except Exception as e:
        print(f"driftwatch scan: error: no Kubernetes credentials: {e}", file=sys.stderr)
        return EXIT_CODES[FAILED]
    args.monitor = f"{namespace}/{name}"
    result = asyncio.run(scan(args, creds, url))
    print(json.dumps(result.last_scan(), allow_nan=False) if args.json else result.summary(namespace, name))
    if result.result == FAILED:
        print(f"driftwatch scan: error: {result.reason}", file=sys.stderr)
    if args.job and result.result != FAILED:
        return EXIT_CODES[NO_DRIFT]
    return result.exit_code

"""``driftwatch simulate``: synthetic traffic to a sidecar, to see drift detected (demos, tests, tuning).

Modes (the change begins at ``--change-at`` of the run, default halfway, so the first part teaches the
baseline): ``normal`` (steady), ``spike`` (sudden +6sigma mean shift), ``creep`` (mean rising linearly to
+6sigma), ``flap`` (alternating normal / +6sigma in six periods), ``category-shift`` (categorical mix
70/25/5 → 20/30/50; numeric features stay steady). ``--sigmas`` sets the size of the change (a canary
shifted by +1sigma: ``--mode spike --change-at 0 --sigmas 1``).

Bounded in count and time, loopback targets only (it is a load generator), progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import math
import random
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

MODES = ("normal", "spike", "creep", "flap", "category-shift")
MAX_DURATION = 3600.0
MAX_SAMPLES = 10_000_000
#: numeric feature -> (mean, std) of its steady state; unknown names get (50, 5)
BASES = {"latency_ms": (100.0, 10.0), "payload_kb": (20.0, 4.0)}
CATEGORIES = ("basic", "premium", "enterprise")
MIX_BEFORE = (0.70, 0.25, 0.05)
MIX_AFTER = (0.20, 0.30, 0.50)
SHIFT_SIGMAS = 6.0


def shift(mode: str, p: float, change_at: float, sigmas: float = SHIFT_SIGMAS) -> float:
    """Mean shift in standard deviations at progress p in [0, 1)."""
    if p < change_at or mode in ("normal", "category-shift"):
        return 0.0
    q = (p - change_at) / max(1e-9, 1.0 - change_at)
    if mode == "spike":
        return sigmas
    if mode == "creep":
        return sigmas * q
    if mode == "flap":
        return sigmas if int(q * 6) % 2 == 0 else 0.0
    return 0.0


def make_sample(
    rng: random.Random,
    feature: str,
    kind: str,
    mode: str,
    p: float,
    change_at: float,
    sigmas: float = SHIFT_SIGMAS,
) -> Any:
    if kind == "categorical":
        mix = MIX_AFTER if mode == "category-shift" and p >= change_at else MIX_BEFORE
        return rng.choices(CATEGORIES, weights=mix)[0]
    mean, std = BASES.get(feature, (50.0, 5.0))
    return round(rng.gauss(mean + shift(mode, p, change_at, sigmas) * std, std), 3)


def check_loopback(url: str) -> str | None:
    """Error text unless the URL's host resolves only to loopback addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"--target must be an http:// URL, got {url!r}"
    try:
        addrs = {str(ai[4][0]) for ai in socket.getaddrinfo(parts.hostname, parts.port or 80)}
    except OSError as e:
        return f"--target: cannot resolve {parts.hostname}: {e}"
    if not addrs or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs):
        return f"--target must be a loopback address (127.0.0.0/8, ::1, localhost), got {parts.hostname}"
    return None


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="driftwatch simulate",
        description="Synthetic traffic to a sidecar, to see drift detected (demos, tests, tuning).",
        epilog="exit codes:\n  0  sent, every request accepted\n  1  some requests failed\n"
        "  2  bad option (a --target that is not loopback)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--target", required=True, help="sidecar base URL, e.g. http://127.0.0.1:8476 (loopback only)"
    )
    ap.add_argument(
        "--mode",
        choices=MODES,
        default="normal",
        help="normal (steady), spike, creep, flap or category-shift, from --change-at on (default normal)",
    )
    ap.add_argument("--rate", type=float, default=200.0, help="samples per second (default 200)")
    ap.add_argument(
        "--duration", type=float, default=10.0, help=f"seconds (default 10, max {MAX_DURATION:g})"
    )
    ap.add_argument(
        "--features",
        nargs="+",
        default=["latency_ms"],
        help="feature names; NAME:categorical for a categorical one "
        "(default latency_ms; category-shift adds plan)",
    )
    ap.add_argument("--batch", type=int, default=10, help="samples per request (default 10)")
    ap.add_argument("--key", default="", help="key of every sample (default none)")
    ap.add_argument(
        "--change-at", type=float, default=0.5, help="fraction of the run where the change begins"
    )
    ap.add_argument(
        "--sigmas",
        type=float,
        default=SHIFT_SIGMAS,
        help=f"size of the change in standard deviations (default {SHIFT_SIGMAS:g})",
    )
    ap.add_argument("--seed", type=int, default=0, help="random seed: the same seed, the same samples")
    ap.add_argument("--concurrency", type=int, default=4, help="requests in flight at most")
    ap.add_argument("--token-file", help="bearer token file, if the sidecar requires one")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    args.token = None
    if args.token_file:
        with open(args.token_file) as fh:
            args.token = fh.read().strip()
    if not 0 < args.duration <= MAX_DURATION:
        ap.error(f"--duration must be in (0, {MAX_DURATION:g}]")
    if args.rate <= 0 or args.rate * args.duration > MAX_SAMPLES:
        ap.error(f"--rate must be positive and rate x duration at most {MAX_SAMPLES}")
    if not 1 <= args.batch <= 100_000 or not 1 <= args.concurrency <= 256 or not 0 <= args.change_at < 1:
        ap.error("--batch in [1, 100000], --concurrency in [1, 256], --change-at in [0, 1)")
    if not math.isfinite(args.sigmas) or abs(args.sigmas) > 1000:
        ap.error("--sigmas must be a number in [-1000, 1000]")
    return args


async def run(args: argparse.Namespace) -> int:
    import aiohttp

    features: list[tuple[str, str]] = []
    for f in args.features:
        name, _, kind = f.partition(":")
        features.append((name, kind or "numeric"))
    if args.mode == "category-shift" and not any(k == "categorical" for _, k in features):
        features.append(("plan", "categorical"))
    url = args.target.rstrip("/")
    if not urlsplit(url).path:
        url += "/v1/samples"
    headers = {"Content-Type": "application/json"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"

    rng = random.Random(args.seed)
    total = int(args.rate * args.duration)  # observations (each carries every feature)
    n_requests = math.ceil(total / args.batch)
    interval = args.duration / n_requests
    stats = {"accepted": 0, "rejected": 0, "requests": 0, "retries": 0, "errors": 0}
    sem = asyncio.Semaphore(args.concurrency)
    start = time.monotonic()
    deadline = start + args.duration + 30.0  # retries included, the run ends by itself

    async def send(session: aiohttp.ClientSession, body: bytes) -> None:
        async with sem:
            for _attempt in range(5):
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        doc = await resp.json(content_type=None)
                        if resp.status == 429 and time.monotonic() < deadline:
                            stats["retries"] += 1
                            await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                            continue
                        stats["requests"] += 1
                        if resp.status == 202:
                            stats["accepted"] += doc.get("accepted", 0)
                            stats["rejected"] += len(doc.get("rejected", []))
                        else:
                            stats["errors"] += 1
                            print(f"simulate: HTTP {resp.status}: {doc}", file=sys.stderr)
                        return
                except (aiohttp.ClientError, TimeoutError, ValueError) as e:
                    stats["errors"] += 1
                    print(f"simulate: request failed: {e}", file=sys.stderr)
                    return

    import orjson

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        tasks: set[asyncio.Task[None]] = set()
        last_report = start
        sent = 0
        for i in range(n_requests):
            due = start + i * interval
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            n = min(args.batch, total - sent)
            samples = []
            ts = time.time()
            for j in range(n):
                p = (sent + j) / total
                for name, kind in features:
                    s: dict[str, Any] = {
                        "feature": name,
                        "value": make_sample(rng, name, kind, args.mode, p, args.change_at, args.sigmas),
                        "ts": ts,
                    }
                    if args.key:
                        s["key"] = args.key
                    samples.append(s)
            sent += n
            t = asyncio.create_task(send(session, orjson.dumps({"samples": samples})))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            if not args.quiet and time.monotonic() - last_report >= 1.0:
                last_report = time.monotonic()
                sigmas = shift(args.mode, sent / total, args.change_at, args.sigmas)
                print(
                    f"simulate: {last_report - start:5.1f}s {args.mode} shift={sigmas:.1f}sigma "
                    f"sent={sent}/{total} accepted={stats['accepted']} rejected={stats['rejected']} "
                    f"retries={stats['retries']} errors={stats['errors']}",
                    file=sys.stderr,
                )
        if tasks:
            await asyncio.gather(*tasks)
    elapsed = time.monotonic() - start
    print(
        f"simulate: done in {elapsed:.1f}s: {stats['requests']} requests, "
        f"{stats['accepted']} samples accepted, "
        f"{stats['rejected']} rejected, {stats['retries']} retries after 429, {stats['errors']} errors",
        file=sys.stderr,
    )
    return 0 if stats["errors"] == 0 else 1


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    err = check_loopback(args.target)
    if err:
        print(f"driftwatch simulate: {err}", file=sys.stderr)
        return 2
    return asyncio.run(run(args))

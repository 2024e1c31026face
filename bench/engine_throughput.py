"""Engine throughput: samples/second per core through ``Engine.update`` of one numeric feature.

    .venv/bin/python bench/engine_throughput.py [--quick]

CPU time (``time.process_time``), not wall clock: the box is shared, and CPU time is what a pod pays.
One process, one stream, fed in batches of 1k / 10k / 100k / 1M values after a 5,000-sample warm-up
(the baseline is learned and frozen by then). Two inputs: ``null`` (i.i.d. normal, no drift) and
``drift`` (the mean alternates between 0 and +1.5 sigma every 10,000 samples: a DRIFT_START and a
DRIFT_END every 20,000 samples, so a 100k batch holds ~10 transitions). Columns:

* ``default``: the default monitor (``preset: auto``), i.e. what a pod runs;
* ``oracle``: a single one-sided CUSUM on ``(x - mu) / sigma`` with its state carried between batches
  (one subtract-scale, one cumsum, one running minimum, one max): the floor of what numpy can do here,
  so the gap to ``default`` is the price of the rest (four CUSUMs, the scale input, the shape test,
  prewhitening, Huber clipping, evidence, summaries);
* ``zscore-consecutive``, ``sustained-zscore``: the compatibility presets.

Millions of samples per CPU-second; more is better. ``--before REF`` adds a ``default@REF`` column:
the default monitor of another commit (``git archive`` unpacked in a temporary directory, measured in a
subprocess of the same run), so before/after is measured under the same load.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from driftwatch.detect import Engine
from driftwatch.vocab.spec import MonitorSpec

WARMUP = 5_000
PERIOD = 10_000  # drift: mean 0 / +1.5 sigma, alternating every PERIOD samples
BATCHES = (1_000, 10_000, 100_000, 1_000_000)


def stream(kind: str, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(100.0, 10.0, n)
    if kind == "drift":
        on = (np.arange(n) // PERIOD) % 2 == 1
        x[on] += 15.0
    return x


class Oracle:
    """One-sided CUSUM (k = 0.5, h = 8) on (x - mu) / sigma, state carried across batches."""

    def __init__(self, mu: float, sigma: float, k: float = 0.5, h: float = 8.0) -> None:
        self.mu, self.inv, self.k, self.h, self.s = mu, 1.0 / sigma, k, h, 0.0
        self.alarms = 0

    def update(self, x: np.ndarray) -> None:
        w = x - (self.mu + self.k / self.inv)  # (x - mu)/sigma - k, scaled by sigma
        w *= self.inv
        np.cumsum(w, out=w)
        w0 = float(w[0])
        w[0] = min(w0, -self.s)
        m = np.minimum.accumulate(w)
        w[0] = w0
        w -= m
        if w.max() > self.h:  # an alarm: count it and restart after it (rare; not the hot path)
            self.alarms += 1
            w[:] = 0.0
        self.s = float(w[-1])


def runner(method: str) -> Callable[[np.ndarray], None]:
    if method == "oracle":
        o = Oracle(100.0, 10.0)
        return o.update
    preset = "auto" if method == "default" else method
    eng = Engine(MonitorSpec.parse({"preset": preset}), name="bench")

    def feed(x: np.ndarray) -> None:
        eng.update("v", x)

    return feed


def measure(method: str, kind: str, batch: int, total: int) -> float:
    x = stream(kind, WARMUP + max(total, 2 * batch))
    feed = runner(method)
    feed(x[:WARMUP])
    body = x[WARMUP:]
    n = (body.size // batch) * batch
    t0 = time.process_time()
    for i in range(0, n, batch):
        feed(body[i : i + batch])
    dt = time.process_time() - t0
    return n / dt / 1e6 if dt > 0 else float("inf")


def before_column(ref: str, kinds: list[tuple[int, str]], total: int) -> dict[tuple[int, str], float]:
    """The default monitor of commit ``ref``, measured in a subprocess from a ``git archive`` of it."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(root), "archive", ref], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        kernel = Path(tmp) / "driftwatch" / "detect" / "_kernel.c"
        if kernel.exists():  # a commit with the compiled loop: build it in place
            build = "from setuptools import setup; setup()"
            subprocess.run(
                [sys.executable, "-c", build, "build_ext", "--inplace", "-q"],
                cwd=tmp,
                check=True,
                capture_output=True,
            )
        code = (
            "import json, sys; sys.path.insert(0, sys.argv[1]); import engine_throughput as b; "
            "cells = json.loads(sys.argv[3]); "
            "print(json.dumps([b.measure('default', k, n, int(sys.argv[2])) for n, k in cells]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(Path(tmp) / "bench"), str(total), json.dumps(kinds)],
            capture_output=True,
            check=True,
            text=True,
            env={"PYTHONPATH": tmp, "PATH": "/usr/bin:/bin"},
        )
    return dict(zip(kinds, json.loads(out.stdout.strip().splitlines()[-1]), strict=True))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="500k samples per cell instead of 3M (noisier)")
    p.add_argument("--methods", default="default,oracle,zscore-consecutive,sustained-zscore")
    p.add_argument("--before", metavar="REF", help="also measure the default monitor of this git commit")
    args = p.parse_args(argv)
    total = 500_000 if args.quick else 3_000_000
    methods = args.methods.split(",")
    before: dict[tuple[int, str], float] = {}
    if args.before:
        print(f"  default@{args.before} (all cells)", file=sys.stderr, flush=True)
        before = before_column(args.before, [(b, k) for b in BATCHES for k in ("null", "drift")], total)
        methods = [*methods, f"default@{args.before}"]
    print("Engine.update throughput, one numeric feature: million samples per CPU-second (process_time)")
    print()
    head = f"{'batch':>9} {'input':>6} " + " ".join(f"{m:>19}" for m in methods)
    print(head)
    print("-" * len(head))
    for batch in BATCHES:
        for kind in ("null", "drift"):
            cells = []
            for m in methods:
                if "@" in m:
                    cells.append(f"{before[(batch, kind)]:>19.2f}")
                    continue
                print(f"  {m} {kind} {batch}", file=sys.stderr, flush=True)
                cells.append(f"{measure(m, kind, batch, total):>19.2f}")
            print(f"{batch:>9,} {kind:>6} " + " ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

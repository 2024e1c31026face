"""Where a stream's bytes go: the engine's state and the sidecar's per-stream rows, per object kind.

In-process and deterministic: the fill of ``bench/sidecar.py --footprint`` (100 keys x 10 features,
200 samples each, a receive timestamp per sample, the sidecar's spec defaults) applied to an ``Engine``
as the sidecar's worker applies it (one ``Engine.update`` per stream), then:

- tracemalloc: the bytes the fill left allocated (the engine's state), and the bytes the sidecar's rows
  for ``/metrics`` (``views._build``) and its per-stream counters hold;
- a walk of the objects reachable from each stream, per kind: each class's instances (``sys.getsizeof``,
  the GC header included), and numpy arrays split into their headers and their data buffers (a view's
  data is its base's, counted once). Objects shared by every stream (the design, the empty shared
  arrays, interned strings) are counted once, with the stream that reaches them first.

The walk counts what Python reports, not the allocator's rounding (pymalloc rounds to 16 bytes, malloc
adds ~16 bytes a block); tracemalloc's total is what the allocators were asked for. Neither is RSS
(``bench/sidecar.py --footprint`` measures that): freed memory the process keeps, and fragmentation,
come on top.

    .venv/bin/python bench/stream_footprint.py [--keys 100] [--samples 200]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections import defaultdict
from types import FunctionType, ModuleType
from typing import Any

import numpy as np

from driftwatch.detect import Engine
from driftwatch.sidecar.views import _build
from driftwatch.vocab.spec import MonitorSpec

FEATURES = [f"f{i}" for i in range(10)]
SKIP = (type, ModuleType, FunctionType)


def fill(keys: int, samples: int) -> Engine:
    """The bench's fill: key ``k{k}``, features f0-f9, values ``10 + (k + i) % 7``, receive times."""
    eng = Engine(MonitorSpec.parse({}), name="bench")
    now = time.time()
    for k in range(keys):
        v = np.array([10.0 + ((k + i) % 7) for i in range(samples)])
        ts = np.full(samples, now)
        for f in FEATURES:
            eng.update(f, v, key=f"k{k}", ts=ts)
    return eng


def walk(roots: list[Any], seen: set[int]) -> dict[str, list[int]]:
    """Bytes and counts per kind of everything reachable from ``roots`` not in ``seen``."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    stack = list(roots)
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, SKIP):
            continue
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            head = sys.getsizeof(o) - (o.nbytes if o.base is None else 0)
            out["ndarray header"][0] += head
            out["ndarray header"][1] += 1
            if o.base is None:
                out[f"ndarray data {o.dtype}"][0] += o.nbytes
                out[f"ndarray data {o.dtype}"][1] += 1
            else:
                stack.append(o.base)
            continue
        name = type(o).__qualname__
        if isinstance(o, bytes | bytearray | memoryview) and name != "memoryview":
            name = "bytes (array data)"
        out[name][0] += sys.getsizeof(o)
        out[name][1] += 1
        stack.extend(gc.get_referents(o))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--samples", type=int, default=200)
    args = ap.parse_args()
    n = args.keys * len(FEATURES)

    Engine(MonitorSpec.parse({}), name="warm").update("f0", np.ones(300), key="w")  # lazy imports, caches
    gc.collect()
    tracemalloc.start()
    t0 = tracemalloc.get_traced_memory()[0]
    eng = fill(args.keys, args.samples)
    gc.collect()
    engine_bytes = tracemalloc.get_traced_memory()[0] - t0
    t1 = tracemalloc.get_traced_memory()[0]
    view = _build(eng, 1, json=False)
    rows_bytes = tracemalloc.get_traced_memory()[0] - t1
    t2 = tracemalloc.get_traced_memory()[0]
    ingested = {(f, f"k{k}"): args.samples for k in range(args.keys) for f in FEATURES}
    counters_bytes = tracemalloc.get_traced_memory()[0] - t2
    tracemalloc.stop()

    seen: set[int] = {id(eng.spec), id(eng)}
    streams = list(eng._streams.values())  # the engine's insides: this measures them
    kinds = walk(streams, seen)
    row_kinds = walk(list(view.rows), seen)

    per = 1000 / n
    shape = f"{args.keys} keys x {len(FEATURES)} features, {args.samples} samples"
    print(f"stream footprint: {n} streams ({shape})")
    print()
    print("| tracemalloc (allocated, retained) | MB per 1,000 streams |")
    print("| --- | --- |")
    print(f"| engine state after the fill | {engine_bytes * per / 1e6:.2f} |")
    print(f"| sidecar rows for /metrics (views._build) | {rows_bytes * per / 1e6:.2f} |")
    print(f"| sidecar per-stream counter dict | {counters_bytes * per / 1e6:.2f} |")
    print()
    print("| object kind (walk from each stream) | count per stream | bytes per stream | MB per 1,000 |")
    print("| --- | --- | --- | --- |")
    for title, table in (("engine", kinds), ("rows", row_kinds)):
        total = 0
        for name, (b, c) in sorted(table.items(), key=lambda kv: -kv[1][0]):
            total += b
            if b * per >= 5_000:  # below 5 kB per 1,000 streams: in the total only
                print(f"| {title}: {name} | {c / n:.1f} | {b / n:.0f} | {b * per / 1e6:.2f} |")
        print(f"| **{title}: all** | | {total / n:.0f} | {total * per / 1e6:.2f} |")
    del ingested
    return 0


if __name__ == "__main__":
    sys.exit(main())

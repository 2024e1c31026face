"""The Prometheus text format (0.0.4), written directly: a few string joins per sample instead of
prometheus-client's family objects, which cost the sidecar ~1.6 MB and tens of ms of start-up to
import and several times as long to render. Also the ``process_*`` and ``python_info`` families that
prometheus-client's default collectors export, read from /proc."""

from __future__ import annotations

import hashlib
import io
import math
import os
import resource
import sys
from collections.abc import Iterable, Sequence

from driftwatch.sidecar.histogram import FastHistogram

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = Sequence[str]


#: the longest label value written: longer ones (keys restored from an old checkpoint, say) are cut
MAX_LABEL = 128


def label_value(v: str) -> str:
    """A label value as written: at most ``MAX_LABEL`` characters (a longer one is cut and ends in a
    hash of the whole, so two long values stay two series), escaped as the text format wants."""
    if len(v) > MAX_LABEL:
        v = f"{v[: MAX_LABEL - 9]}~{hashlib.sha256(v.encode('utf-8', 'replace')).hexdigest()[:8]}"
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(v: float) -> str:
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _pairs(names: Labels, values: Labels) -> str:
    return ",".join(f'{n}="{label_value(v)}"' for n, v in zip(names, values, strict=True))


class Writer:
    """One exposition; every sample of a labelled family carries the ``base`` labels first.

    Each line is written to one growing text buffer as it is formatted, never kept as a string of its
    own until the end: with 1,000 streams the per-stream families are ~14,000 lines, and holding them
    (with the rows' label tuples) until a join was a ~3 MB peak of small objects on every scrape,
    which left ~1 MB of empty pools the allocator kept resident (docs/decisions.md §35)."""

    def __init__(self, base_names: Labels = (), base_values: Labels = ()) -> None:
        self._out = io.StringIO()
        self._write = self._out.write
        self._base = _pairs(base_names, base_values)

    def raw(self, block: str) -> None:
        """Text already in the format (whole lines, each ending in a newline), copied as it is."""
        self._write(block)

    def body(self) -> str:
        """What was written so far: whole lines, each ending in a newline."""
        return self._out.getvalue()

    def _labels(self, names: Labels, values: Labels) -> str:
        own = _pairs(names, values)
        both = f"{self._base},{own}" if self._base and own else self._base or own
        return f"{{{both}}}" if both else ""

    def _head(self, name: str, kind: str, help_: str) -> None:
        self._write(f"# HELP {name} {help_}\n# TYPE {name} {kind}\n")

    def counter(self, name: str, help_: str, names: Labels, rows: Iterable[tuple[Labels, float]]) -> None:
        """``rows``: (label values, value); the samples are named ``{name}_total``."""
        self._head(f"{name}_total", "counter", help_)
        write = self._write
        for values, v in rows:
            write(f"{name}_total{self._labels(names, values)} {_num(v)}\n")

    def gauge(self, name: str, help_: str, names: Labels, rows: Iterable[tuple[Labels, float]]) -> None:
        self._head(name, "gauge", help_)
        write = self._write
        for values, v in rows:
            write(f"{name}{self._labels(names, values)} {_num(v)}\n")

    def histogram(self, name: str, help_: str, h: FastHistogram) -> None:
        self._head(name, "histogram", help_)
        for le, count in h.buckets():
            self._write(f"{name}_bucket{self._labels(('le',), (le,))} {_num(count)}\n")
        base = self._labels((), ())
        self._write(f"{name}_count{base} {_num(sum(h.counts))}\n")
        self._write(f"{name}_sum{base} {_num(h.sum)}\n")

    def process(self) -> None:
        """``process_*`` (Linux) and ``python_info``, unlabelled, as prometheus-client exports them."""
        for name, kind, help_, v in _process():
            self._head(name, kind, help_)
            self._write(f"{name} {_num(v)}\n")
        vi = sys.version_info
        impl = {"cpython": "CPython", "pypy": "PyPy"}.get(sys.implementation.name, sys.implementation.name)
        names = ("implementation", "major", "minor", "patchlevel", "version")
        values = (impl, str(vi.major), str(vi.minor), str(vi.micro), f"{vi.major}.{vi.minor}.{vi.micro}")
        self._head("python_info", "gauge", "Python platform information")
        self._write(f"python_info{{{_pairs(names, values)}}} 1.0\n")

    def text(self) -> bytes:
        return self._out.getvalue().encode("utf-8", "replace")  # never fails on text


def _process() -> list[tuple[str, str, str, float]]:
    try:
        with open("/proc/self/stat") as f:
            stat = f.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
        fds = len(os.listdir("/proc/self/fd"))
    except (OSError, StopIteration):  # not Linux
        return []
    ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    return [
        ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", float(stat[20])),
        ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", float(stat[21]) * page),
        ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
         float(stat[19]) / ticks + boot),
        ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
         (float(stat[11]) + float(stat[12])) / ticks),
        ("process_open_fds", "gauge", "Number of open file descriptors.", float(fds)),
        ("process_max_fds", "gauge", "Maximum number of open file descriptors.",
         float(resource.getrlimit(resource.RLIMIT_NOFILE)[0])),
    ]  # fmt: skip

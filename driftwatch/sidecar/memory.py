"""Giving memory back: the sidecar lives in someone else's pod, so its resident size is the figure that
matters, not what the allocator keeps for later.

glibc keeps freed memory in its arenas (one per thread that allocated, by default up to 8 x cores)
instead of returning it: a burst of large request bodies, a checkpoint or a status document leaves the
process tens of MB larger than what it uses. ``limit_arenas`` (before any thread starts) keeps every
thread in one arena; ``trim`` (``malloc_trim``) hands free pages back, run on the engine thread after
the work that frees most (checkpoints, views) and at most every few seconds after chunks. Elsewhere than
glibc (musl, macOS) both do nothing.

``single_threaded_blas`` (before numpy is imported) stops OpenBLAS from starting a thread pool sized
to the node's cores -- in a pod on a 64-core node, 63 idle threads with their stacks and buffers -- for
a process that makes no BLAS call worth threading (its reductions use ``einsum``, not ``dot``).
"""

from __future__ import annotations

import ctypes
import gc
import os
import time
from typing import Any

#: the thread-count variables of the BLAS builds numpy ships or links (OpenBLAS, and OpenMP-based ones)
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

M_ARENA_MAX = -8  # mallopt parameter (malloc.h)
#: a trim's full collection is followed by none for this many times its cost (Trimmer)
GC_SPACING = 500


def _libc() -> Any:
    """The C library the process already uses (``dlopen(NULL)``), when it is glibc."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _libc()


def single_threaded_blas() -> None:
    """One BLAS thread unless the environment says otherwise; effective only before numpy loads."""
    for var in BLAS_THREADS:
        os.environ.setdefault(var, "1")


def limit_arenas(n: int = 1) -> None:
    if _LIBC is not None:
        _LIBC.mallopt(M_ARENA_MAX, n)


class Trimmer:
    """``maybe()`` trims at most every ``interval`` seconds; ``now()`` trims at once.

    A trim is preceded by a full collection at most every ``interval`` seconds: it clears the
    interpreter's free lists (up to 2,000 tuples of each size, and dicts, lists, floats), which fill
    when a document or a burst of requests is freed and keep small-object arenas that are otherwise
    empty from being returned -- ~2 MB after the bench's 1,000-stream fill that ``malloc_trim`` alone
    leaves resident. Since start-up objects are frozen (``gc.freeze``, main.py) a collection scans only
    what the run created: ~10 ms with 1,000 streams; the next one waits ``GC_SPACING`` times that
    (at least ``interval``), so collections take at most 0.2 % of a thread whatever the stream count."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self._last = 0.0
        self._next_gc = 0.0

    def maybe(self) -> None:
        if time.monotonic() - self._last >= self.interval:
            self.now()

    def now(self) -> None:
        self._last = t = time.monotonic()
        if t >= self._next_gc:
            gc.collect()
            cost = time.monotonic() - t
            self._next_gc = t + max(self.interval, GC_SPACING * cost)
        if _LIBC is not None:
            _LIBC.malloc_trim(0)

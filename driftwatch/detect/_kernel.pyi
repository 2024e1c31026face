"""Type stub of the compiled fused loop (``_kernel.c``); ``kernel.py`` documents the arrays."""

from typing import Any

def run(
    x: Any,
    ts: Any,
    params: Any,
    state: Any,
    profile: Any,
    profile_sums: Any,
    edges: Any,
    base: Any,
    counts: Any,
    mode: int,
    limit: int,
    /,
) -> tuple[int, int, int]: ...

"""Fixtures that start real sidecar processes (see sidecar_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sidecar_helpers import SidecarProc, make_config


@pytest.fixture
def sidecar_factory(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[Callable[..., SidecarProc]]:
    """``sidecar_factory(redis_url=..., limits={...})`` starts a sidecar; all are stopped at the end."""
    started: list[SidecarProc] = []

    def make(
        pod: str = "pod-0", start: bool = True, config: dict[str, Any] | None = None, **kw: Any
    ) -> SidecarProc:
        cfg = config or make_config(free_port(), free_port(), **kw)
        sc = SidecarProc(cfg, tmp_path / f"sc-{len(started)}", pod)
        started.append(sc)
        return sc.start() if start else sc

    yield make
    for sc in started:
        if sc.proc is not None:
            try:
                sc.stop(timeout=10)
            except Exception:
                sc.proc.kill()

"""Fixtures that start real sidecar processes (see sidecar_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sidecar_helpers import SidecarProc, sidecar_processes


@pytest.fixture
def sidecar_factory(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[Callable[..., SidecarProc]]:
    """``sidecar_factory(redis_url=..., limits={...})`` starts a sidecar; all are stopped at the end."""
    yield from sidecar_processes(tmp_path, free_port)

"""DriftWatch: distribution-drift detection for Kubernetes services and ML models.

The package is one image with several entry points (see ``driftwatch.cli``); docs/decisions.md
describes the tree. ``driftwatch.__version__`` is ``pyproject.toml``'s version, read from the installed
metadata on first use (importing ``importlib.metadata`` costs ~50 ms: the sidecar does not pay it at
start).
"""

from __future__ import annotations

import functools


@functools.cache
def version() -> str:
    """The installed distribution's version (``pyproject.toml``); ``0+unknown`` without an install."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("driftwatch")
    except PackageNotFoundError:  # a source tree on sys.path, never installed
        return "0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return version()
    raise AttributeError(f"module 'driftwatch' has no attribute {name!r}")

"""DriftWatch: distribution-drift detection for Kubernetes services and ML models.

The package is one image with several entry points (see ``driftwatch.cli``); docs/decisions.md
describes the tree. ``driftwatch.__version__`` is ``pyproject.toml``'s version, read from the installed
metadata on first use, without importing ``importlib.metadata`` (~50 ms and ~1.8 MB resident: the
sidecar pays neither).
"""

from __future__ import annotations

import functools


@functools.cache
def version() -> str:
    """The installed distribution's version (``pyproject.toml``); ``0+unknown`` without an install.

    Read from the first ``driftwatch-*.dist-info/METADATA`` (or ``.egg-info/PKG-INFO``) on
    ``sys.path``, as ``importlib.metadata`` finds it: importing that (with ``zipfile``, ``csv``,
    ``importlib.resources``) kept ~1.8 MB resident in every sidecar from its first scrape on, for one
    line of one file. Anything unusual (an egg, a zip
    on the path, no install) is left to ``importlib.metadata`` itself."""
    found = _dist_info_version()
    if found is not None:
        return found
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("driftwatch")
    except PackageNotFoundError:  # a source tree on sys.path, never installed
        return "0+unknown"


def _dist_info_version() -> str | None:
    """``Version:`` of the first ``driftwatch-*.dist-info`` (or ``.egg-info`` directory) in a directory
    of ``sys.path`` (None: the first match cannot be read as one, or there is none)."""
    import os
    import sys

    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # not a directory (a zip), or gone
            continue
        ours = [n for n in names if _dist_name(n) == "driftwatch"]
        if not ours:
            continue
        # a dist-info keeps its headers in METADATA, an egg-info directory (a source tree after an
        # editable install, when the tree is on sys.path) in PKG-INFO: the same header format
        infos = [(n, "METADATA") for n in ours if n.lower().endswith(".dist-info")]
        infos += [(n, "PKG-INFO") for n in ours if n.lower().endswith(".egg-info")]
        if not infos:
            return None
        try:
            with open(os.path.join(entry or ".", *infos[0]), encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        break  # the end of the headers
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "version":
                        return value.strip()
        except OSError:
            pass
        return None
    return None


def _dist_name(entry: str) -> str | None:
    """The normalised project name of a ``*.dist-info`` / ``*.egg-info`` entry, as importlib.metadata
    normalises it (``Drift_Watch-1.0.dist-info`` -> ``drift_watch``)."""
    import re

    low = entry.lower()
    if not low.endswith((".dist-info", ".egg-info")):
        return None
    name = low.rpartition(".")[0].partition("-")[0]
    return re.sub(r"[-_.]+", "-", name).replace("-", "_")


def __getattr__(name: str) -> str:
    if name == "__version__":
        return version()
    raise AttributeError(f"module 'driftwatch' has no attribute {name!r}")

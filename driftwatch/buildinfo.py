"""What this build of DriftWatch is, in the two shapes people read it:

* ``info()`` -- the one answer to ``driftwatch version`` (client side) and the operator's ``GET
  /version`` (server side), shaped like Kubernetes' ``/version`` but with Python's words;
* ``build_info()`` -- the labels of ``driftwatch_build_info{version, python_version, git_commit} 1`` (the
  operator's and every sidecar's /metrics): the usual Prometheus build-info gauge, so a dashboard or an
  alert can tell which release each process runs (``count by (version) (driftwatch_build_info)`` during
  an upgrade).

Standard library only. ``git_commit`` is what the image was built from: the build passes it as
``DRIFTWATCH_GIT_COMMIT`` (an ``ENV`` from a build argument); ``unknown`` when nothing says.
"""

from __future__ import annotations

import functools
import os
import platform
import sys

from driftwatch import version

#: the metric's name and its label names, in the order they are written
METRIC = "driftwatch_build_info"
LABELS = ("version", "python_version", "git_commit")
ENV_GIT_COMMIT = "DRIFTWATCH_GIT_COMMIT"


def info() -> dict[str, str]:
    """``{"version", "python", "platform"}``: the package version (pyproject.toml's), the interpreter,
    and ``os/arch`` as Kubernetes writes it (``linux/x86_64``)."""
    from driftwatch import __version__

    return {
        "version": str(__version__),
        "python": platform.python_version(),
        "platform": f"{sys.platform}/{platform.machine()}",
    }


@functools.cache
def build_info() -> dict[str, str]:
    """The label values; computed once (``version()`` reads the installed metadata, ~50 ms, so the
    sidecar pays it on its first scrape, not at start-up)."""
    return {
        "version": version(),
        "python_version": platform.python_version(),
        "git_commit": os.environ.get(ENV_GIT_COMMIT, "").strip() or "unknown",
    }

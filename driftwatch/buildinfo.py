"""What this build of DriftWatch is: the one answer to ``driftwatch version`` (client side) and the
operator's ``GET /version`` (server side), shaped like Kubernetes' ``/version`` but with Python's words."""

from __future__ import annotations

import platform
import sys


def info() -> dict[str, str]:
    """``{"version", "python", "platform"}``: the package version (pyproject.toml's), the interpreter,
    and ``os/arch`` as Kubernetes writes it (``linux/x86_64``)."""
    from driftwatch import __version__

    return {
        "version": str(__version__),
        "python": platform.python_version(),
        "platform": f"{sys.platform}/{platform.machine()}",
    }

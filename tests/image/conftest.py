"""The image under test: the real Dockerfile, built with podman by scripts/build-image.sh.

``image`` builds it once per session (podman's layer cache makes that seconds when ``make image`` just
ran, and guarantees the tests never run a stale image after a source change); ``DW_IMAGE_PREBUILT``
names an already built image instead. The tests are marked ``image`` and skipped, with the reason,
only where podman is not installed (``scripts/install-image-tools.sh``); CI installs it, so there they
run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def image() -> str:
    """``DW_IMAGE_PREBUILT``, or the image scripts/build-image.sh builds from this checkout."""
    if os.environ.get("DW_IMAGE_PREBUILT"):
        return os.environ["DW_IMAGE_PREBUILT"]
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-image.sh")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=3000,  # a first build on a fresh, loaded machine: base image, apt, numpy/scipy wheels
    )
    if result.returncode != 0:
        raise AssertionError(f"scripts/build-image.sh failed ({result.returncode}):\n{result.stderr[-6000:]}")
    return result.stdout.strip().splitlines()[-1]

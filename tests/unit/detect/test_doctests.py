"""The docstring examples of driftwatch.detect run (they are the River-style usage documentation)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "summaries",
    "calibration",
    "transforms",
    "tails",
    "seasonal",
    "detectors.cusum",
    "detectors.scale",
    "detectors.shape",
    "detectors.gtest",
    "detectors.tail",
    "categorical",
    "numeric",
    "adoption",
    "engine",
    "baseline_data",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    mod = importlib.import_module(f"driftwatch.detect.{name}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0

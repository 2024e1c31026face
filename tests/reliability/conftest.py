"""The reliability suite (issue 12): faults, hostile input and security properties, each a test that
failed before its fix.

Every test here is marked ``reliability``; those that need the local control plane are also marked
``e2e`` (so ``make unit`` skips them), and the long ones ``slow``: ``make test`` runs everything but
``slow``, ``make reliability`` runs the whole suite. docs/reliability.md holds the table of a run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE not in item.path.parents:
            continue
        item.add_marker(pytest.mark.reliability)
        if "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)

"""The end-to-end tests: every test collected under tests/e2e is marked ``e2e``, so ``-m "not e2e"``
skips them all. The ``cluster`` and ``namespace`` fixtures live in tests/conftest.py (the reliability
suite shares the session's control plane)."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # a conftest hook sees every item of the session: mark only ours
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)

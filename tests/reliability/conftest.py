"""The reliability suite (issue 12): faults, hostile input and security properties, each a test that
failed before its fix.

Every test here is marked ``reliability``; those that need the local control plane are also marked
``e2e`` (so ``make unit`` skips them), and the long ones ``slow``: ``make test`` runs everything but
``slow``, ``make reliability`` runs the whole suite. docs/reliability.md holds the table of a run: tests
record their numbers (``reliability_record``), the terminal summary prints the table and writes
build/reliability-table.{md,json}, and ``make reliability-table`` puts it in the document
(``reliability_table``).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).parent
#: tests of this suite that failed this session: their numbers stay out of the table
_FAILED: set[str] = set()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE not in item.path.parents:
            continue
        item.add_marker(pytest.mark.reliability)
        if "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def reliability_record() -> Callable[..., None]:
    """``reliability_record(**numbers)``: the running test's numbers for docs/reliability.md's table."""
    from reliability_helpers import record

    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _FAILED.add(report.nodeid.rsplit("/", 1)[-1])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from reliability_helpers import RECORDS

    if not RECORDS:
        return
    from reliability_table import JSON_OUT, MD_OUT, ROOT, run_rows, write_run

    command = shlex.join(["pytest", *sys.argv[1:]])
    failed = sorted(_FAILED & set(RECORDS))
    write_run(RECORDS, failed, command)
    terminalreporter.section("reliability table: the rows this run measured")
    terminalreporter.write(run_rows(RECORDS, failed))
    if failed:
        terminalreporter.write_line(f"failed (numbers left out): {', '.join(failed)}")
    terminalreporter.write_line(
        f"every row: {MD_OUT.relative_to(ROOT)}; numbers: {JSON_OUT.relative_to(ROOT)}; "
        "into docs/reliability.md: make reliability-table"
    )

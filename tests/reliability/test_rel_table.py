"""docs/reliability.md's table from a run (``reliability_table``): every measured row fills from the
numbers its tests record, a partial run is refused unless kept, and kept rows say they are older."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from reliability_table import END, NOT_RUN, OLDER, ROWS, START, Row, render, table, write_run


def fields(row: Row) -> dict[str, dict[str, Any]]:
    """Every number ``row``'s template names, as records of its sources (value 1)."""
    records: dict[str, dict[str, Any]] = {s: {} for s in row.sources}
    for _, name, _, _ in string.Formatter().parse(row.numbers):
        if name is None:
            continue
        head, _, rest = name.partition("[")
        if head.isdigit():
            records[row.sources[int(head)]][rest.rstrip("]")] = 1
        else:
            for numbers in records.values():
                numbers[head] = 1
    return records


def all_records() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in ROWS:
        for source, numbers in fields(row).items():
            out.setdefault(source, {}).update(numbers)
    return out


def test_every_measured_row_fills_from_its_numbers() -> None:
    measured = [row for row in ROWS if row.sources]
    assert len(measured) >= 15
    for row in measured:
        text = row.fill(all_records())
        assert text is not None
        assert "{" not in text, (row.tried, text)
        assert all("::" in s and s.startswith("test_") for s in row.sources)
    assert len({(r.tried, r.test) for r in ROWS}) == len(ROWS)  # --keep finds rows by these cells


def test_the_sources_are_tests_of_this_suite() -> None:
    here = Path(__file__).parent
    for row in ROWS:
        for source in row.sources:
            file, _, name = source.partition("::")
            assert f"def {name.split('[')[0]}(" in (here / file).read_text(), source


def doc_with(text: str) -> str:
    return f"# title\n\nintro\n\n{START}\n{text}{END}\n\nafter\n"


def test_a_partial_run_is_refused_unless_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = all_records()
    full, missing = table(records)
    assert not missing
    doc = tmp_path / "reliability.md"
    doc.write_text(doc_with(full))
    # a run of one file: its rows are new, the others are not in it
    row = next(r for r in ROWS if r.sources and len(r.sources) == 1)
    only = {row.sources[0]: {k: 2 for k in records[row.sources[0]]}}
    write_run(only, [], "pytest one file", build=tmp_path)
    run = tmp_path / "reliability-table.json"
    assert render(keep=False, run_file=run, doc_file=doc) == 1
    assert "no numbers for" in capsys.readouterr().err
    assert doc.read_text() == doc_with(full)  # untouched

    assert render(keep=True, run_file=run, doc_file=doc) == 0
    out = capsys.readouterr().out
    text = doc.read_text()
    assert text.startswith("# title\n\nintro\n\n")
    assert text.endswith("\n\nafter\n")
    assert row.cells(row.fill(only) or "") in text  # the new numbers
    older = [r for r in ROWS if r.sources and r is not row]
    assert f"{len(older)} row(s) keep numbers from an earlier run" in out
    for r in older:
        assert r.cells((r.fill(records) or "") + OLDER) in text
    # kept again: marked once, not twice
    assert render(keep=True, run_file=run, doc_file=doc) == 0
    assert OLDER + OLDER not in doc.read_text()


def test_failed_tests_numbers_stay_out(tmp_path: Path) -> None:
    records = all_records()
    row = next(r for r in ROWS if r.sources)
    text = write_run(records, [row.sources[0]], "pytest", build=tmp_path)
    assert row.cells(NOT_RUN) in text
    run = json.loads((tmp_path / "reliability-table.json").read_text())
    assert run["failed"] == [row.sources[0]]

"""Every command's ``--help`` is plain text a terminal shows as is: no reStructuredText or Markdown
(double backticks, ``:class:``, ``**``), every option and argument described, and an ``exit codes:``
block that lists the codes. The parsers are the commands' own (``driftwatch.completion.command_parser``,
which shell completion reads too)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from driftwatch.cli import COMMANDS, main, usage
from driftwatch.completion import command_parser

MARKUP = re.compile(r"``|:class:|:func:|:mod:|\*\*|`[^`\s][^`]*`")


def described(p: argparse.ArgumentParser) -> list[str]:
    """Options and arguments without a description."""
    return [
        "/".join(a.option_strings) or a.dest
        for a in p._actions
        if not isinstance(a, argparse._HelpAction)
        and a.help != argparse.SUPPRESS
        and not (a.help or "").strip()
    ]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_is_plain_described_and_lists_exit_codes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    p = command_parser(name)
    assert p is not None, f"driftwatch {name}: no parser"
    text = p.format_help()
    assert not MARKUP.search(text), f"driftwatch {name} --help has markup: {MARKUP.search(text)}"
    assert described(p) == [], f"driftwatch {name}: options without a description"
    block = text.split("exit codes:\n", 1)
    assert len(block) == 2, f"driftwatch {name} --help lists no exit codes"
    codes = re.findall(r"^  (\d+)  \S", block[1], flags=re.M)
    assert "0" in codes, (name, codes)
    assert codes == sorted(codes, key=int), (name, codes)


def test_top_level_usage_is_plain_and_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == usage().strip()
    assert not MARKUP.search(out)
    for name in COMMANDS:
        assert re.search(rf"^  {name} +\S", out, flags=re.M), name


def test_help_runs_in_a_fresh_process() -> None:
    """What a user types: ``python -m driftwatch status --help`` exits 0 and prints the same text."""
    out = subprocess.run(
        [sys.executable, "-m", "driftwatch", "status", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
        check=True,
    ).stdout
    assert "exit codes:" in out
    assert "-A, --all-namespaces" in out

"""``driftwatch.version()`` reads the installed version without ``importlib.metadata`` (a sidecar's
resident size), the way ``importlib.metadata`` finds it: the first match on ``sys.path`` wins."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import driftwatch


@pytest.fixture(autouse=True)
def _uncached() -> Iterator[None]:
    """``version()`` is cached for the process: read afresh here, and leave no fake version behind."""
    driftwatch.version.cache_clear()
    yield
    driftwatch.version.cache_clear()


def _headers(version: str) -> str:
    return f"Metadata-Version: 2.4\nName: driftwatch\nVersion: {version}\n\nbody: Version: 9.9\n"


@pytest.mark.parametrize(
    ("entry", "file"),
    [("driftwatch-1.2.3.dist-info", "METADATA"), ("driftwatch.egg-info", "PKG-INFO")],
)
def test_the_first_metadata_on_sys_path_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str, file: str
) -> None:
    """A dist-info (an install) and an egg-info directory (a source tree after an editable install, on
    sys.path when tests or tools run from it) are both read; before, an egg-info first on the path sent
    every read to importlib.metadata (the sidecar footprint test failed from a fresh clone)."""
    (tmp_path / entry).mkdir()
    (tmp_path / entry / file).write_text(_headers("1.2.3"))
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    assert driftwatch._dist_info_version() == "1.2.3"
    assert driftwatch.version() == "1.2.3"


def test_no_match_leaves_it_to_importlib_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    assert driftwatch._dist_info_version() is None

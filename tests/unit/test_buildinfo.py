"""``driftwatch_build_info``: the operator's registry (prometheus-client) and the sidecar's own writer
export the same series with the same labels."""

from __future__ import annotations

import platform

from prometheus_client.parser import text_string_to_metric_families

import driftwatch
from driftwatch import buildinfo
from driftwatch.operator import telemetry
from driftwatch.sidecar.exposition import Writer


def _build_samples(text: str) -> list[dict[str, str]]:
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    fam = fams[buildinfo.METRIC]
    assert all(s.value == 1.0 for s in fam.samples)
    return [s.labels for s in fam.samples if s.name == buildinfo.METRIC]


def test_operator_exports_build_info() -> None:
    text, _ = telemetry.exposition()
    (labels,) = _build_samples(text.decode())
    assert labels == buildinfo.build_info()
    assert labels["version"] == driftwatch.version()
    assert labels["python_version"] == platform.python_version()


def test_sidecar_writer_exports_the_same_series() -> None:
    info = buildinfo.build_info()
    w = Writer(("monitor", "namespace"), ("m", "ns"))
    w.gauge(buildinfo.METRIC, "Build.", buildinfo.LABELS, [(tuple(info[k] for k in buildinfo.LABELS), 1.0)])
    (labels,) = _build_samples(w.text().decode())
    assert labels == {**info, "monitor": "m", "namespace": "ns"}


def test_git_commit_comes_from_the_image_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    buildinfo.build_info.cache_clear()
    monkeypatch.setenv(buildinfo.ENV_GIT_COMMIT, " 0123abc\n")
    try:
        assert buildinfo.build_info()["git_commit"] == "0123abc"
        buildinfo.build_info.cache_clear()
        monkeypatch.delenv(buildinfo.ENV_GIT_COMMIT)
        assert buildinfo.build_info()["git_commit"] == "unknown"
    finally:
        buildinfo.build_info.cache_clear()


def test_sidecar_names_the_metric_as_buildinfo_does() -> None:
    from pathlib import Path

    import driftwatch.sidecar.metrics as metrics

    assert f'"{buildinfo.METRIC}"' in Path(metrics.__file__).read_text()

"""``driftwatch replay``: in-process (``replay.main``) and as the installed command.

Exact event rows come from the ``zscore-consecutive`` preset (selected through ``--monitor``), whose
alarm sample is known by construction; the default engine is exercised for shape and plumbing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from driftwatch import replay

ROOT = Path(__file__).resolve().parents[2]
DRIFTWATCH = ROOT / ".venv" / "bin" / "driftwatch"

PRESET_MONITOR = """\
apiVersion: driftwatch.io/v1alpha1
kind: DriftMonitor
metadata: {name: legacy, namespace: shop}
spec:
  preset: zscore-consecutive
  features:
    - {name: latency_ms, type: numeric}
"""


def alternating(n: int) -> list[float]:
    return [1.0 if i % 2 == 0 else -1.0 for i in range(n)]


#: drift at data row 114 (5th consecutive |z| = 3.5 against mean 0, std 1), recovery at row 164
SERIES = [*alternating(110), *[3.5] * 5, *[0.0] * 50, *alternating(20)]
START_ROW, END_ROW = 114, 164


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def csv_of(header: list[str], rows: list[list[object]]) -> str:
    return "\n".join([",".join(header)] + [",".join(str(c) for c in r) for r in rows]) + "\n"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = replay.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def monitor(tmp_path: Path) -> str:
    return write(tmp_path, "monitor.yaml", PRESET_MONITOR)


@pytest.fixture
def series_csv(tmp_path: Path) -> str:
    return write(tmp_path, "data.csv", csv_of(["latency_ms"], [[v] for v in SERIES]))


# --- output ------------------------------------------------------------------------------------------------


def test_json_shape_and_exact_rows(series_csv, monitor, capsys):
    rc, out, err = run([series_csv, "--monitor", monitor, "--json"], capsys)
    assert rc == 0, err
    res = json.loads(out)  # exactly one JSON object on stdout
    assert set(res) >= {"events", "features"}
    assert [(e["type"], e["index"]) for e in res["events"]] == [
        ("DRIFT_START", START_ROW),
        ("DRIFT_END", END_ROW),
    ]
    for e in res["events"]:
        assert set(e) == {
            "id",
            "type",
            "feature",
            "key",
            "index",
            "timestamp",
            "detector",
            "score",
            "severity",
            "evidence",
        }
        assert e["feature"] == "latency_ms"
        assert e["key"] == ""
        assert e["timestamp"] is None
        assert e["detector"] == "zscore-consecutive"
        assert 0.0 <= e["score"] <= 1.0
        assert e["severity"] in {"none", "warning", "critical"}
    assert res["events"][0]["severity"] == "critical"
    (f,) = res["features"]
    assert {k: f[k] for k in ("feature", "key", "state", "samples")} == {
        "feature": "latency_ms",
        "key": "",
        "state": "Stable",
        "samples": len(SERIES),
    }
    assert f["rejected"] == 0


def test_event_ids_are_deterministic(series_csv, monitor, capsys):
    a = json.loads(run([series_csv, "--monitor", monitor, "--json"], capsys)[1])
    b = json.loads(run([series_csv, "--monitor", monitor, "--json"], capsys)[1])
    assert [e["id"] for e in a["events"]] == [e["id"] for e in b["events"]]
    assert len({e["id"] for e in a["events"]}) == 2


def test_table(series_csv, monitor, capsys):
    rc, out, _ = run([series_csv, "--monitor", monitor], capsys)
    assert rc == 0
    assert "Events" in out
    assert "Final state" in out
    lines = out.splitlines()
    start = next(line for line in lines if "DRIFT_START" in line)
    assert start.split()[0] == str(START_ROW)
    assert "zscore-consecutive" in start
    assert "critical" in start
    state = next(line for line in lines if line.startswith("latency_ms") and "numeric" in line)
    assert "Stable" in state
    assert str(len(SERIES)) in state.split()


def test_keys_and_timestamps_map_back_to_rows(tmp_path, monitor, capsys):
    # two keys interleaved: key "a" drifts, key "b" never does; timestamps mix ISO 8601 and epoch
    rows = []
    for i, v in enumerate(SERIES):
        t0 = 1_767_225_600 + 2 * i
        rows.append(["2026-01-01T00:00:00Z" if i == 0 else t0, "a", v])
        rows.append([t0 + 1, "b", alternating(2)[i % 2]])
    path = write(tmp_path, "keys.csv", csv_of(["timestamp", "key", "latency_ms"], rows))
    rc, out, err = run([path, "--monitor", monitor, "--json"], capsys)
    assert rc == 0, err
    res = json.loads(out)
    ev = [(e["type"], e["key"], e["index"]) for e in res["events"]]
    assert ev == [("DRIFT_START", "a", 2 * START_ROW), ("DRIFT_END", "a", 2 * END_ROW)]
    assert res["events"][0]["timestamp"] == 1_767_225_600 + 2 * START_ROW
    assert [(f["key"], f["samples"]) for f in res["features"]] == [("a", len(SERIES)), ("b", len(SERIES))]
    # the table shows ISO times
    rc, out, _ = run([path, "--monitor", monitor], capsys)
    assert "2026-01-01T00:03:48Z" in out  # 1767225600 + 228 seconds


def test_key_column_named_by_the_monitor(tmp_path, capsys):
    mon = write(tmp_path, "m.yaml", "kind: DriftMonitor\nspec:\n  keys: {label: endpoint}\n")
    rows = [[v, ep] for v in SERIES[:150] for ep in ("/a", "/b")]
    path = write(tmp_path, "k.csv", csv_of(["latency_ms", "endpoint"], rows))
    res = json.loads(run([path, "--monitor", mon, "--json"], capsys)[1])
    assert [(f["feature"], f["key"], f["samples"]) for f in res["features"]] == [
        ("latency_ms", "/a", 150),
        ("latency_ms", "/b", 150),
    ]


def test_chunking_does_not_change_events(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 30_000)
    x[12_000:] += 1.0
    cats = rng.choice(["free", "pro"], size=x.size, p=[0.7, 0.3])
    cats[20_000:] = rng.choice(["free", "pro", "ent"], size=10_000)
    path = write(
        tmp_path, "big.csv", csv_of(["x", "plan"], [[f"{v:.6f}", c] for v, c in zip(x, cats, strict=True)])
    )
    whole = json.loads(run([path, "--json"], capsys)[1])
    monkeypatch.setattr(replay, "MIN_CHUNK_ROWS", 777)
    monkeypatch.setattr(replay, "CHUNK_ROWS", 777)
    chunked = json.loads(run([path, "--json"], capsys)[1])

    def where(res):  # which events fired where (scores may differ in rounding between batchings)
        return [(e["id"], e["type"], e["feature"], e["index"], e["detector"]) for e in res["events"]]

    assert where(whole) == where(chunked)
    assert [(f["feature"], f["state"], f["samples"]) for f in whole["features"]] == [
        (f["feature"], f["state"], f["samples"]) for f in chunked["features"]
    ]
    assert any(e["feature"] == "x" and e["type"] == "DRIFT_START" for e in whole["events"])
    assert any(e["feature"] == "plan" and e["type"] == "DRIFT_START" for e in whole["events"])
    first_x = next(e for e in whole["events"] if e["feature"] == "x")
    assert 12_000 <= first_x["index"] < 13_000


def test_progress_goes_to_stderr_not_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(replay, "PROGRESS_MIN_ROWS", 100)
    monkeypatch.setattr(replay, "MIN_CHUNK_ROWS", 10)
    path = write(tmp_path, "p.csv", csv_of(["x"], [[v] for v in np.random.default_rng(0).normal(size=500)]))
    rc, out, err = run([path, "--json"], capsys)
    assert rc == 0
    json.loads(out)
    assert "(100%)" in err
    assert err.count("driftwatch replay:") >= 10


def test_plot_is_a_png(tmp_path, series_csv, monitor, capsys):
    rows = [[v, "free" if i % 3 else "pro"] for i, v in enumerate(SERIES)]
    path = write(tmp_path, "two.csv", csv_of(["latency_ms", "plan"], rows))
    out_png = tmp_path / "out.png"
    rc, _, err = run([path, "--plot", str(out_png)], capsys)
    assert rc == 0, err
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc, _, err = run([series_csv, "--monitor", monitor, "--plot", str(out_png), "--json"], capsys)
    assert rc == 0, err
    assert out_png.stat().st_size > 10_000


def test_categorical_inferred(tmp_path, capsys):
    path = write(tmp_path, "c.csv", csv_of(["plan"], [["free" if i % 4 else "pro"] for i in range(400)]))
    res = json.loads(run([path, "--json"], capsys)[1])
    assert res["features"][0]["type"] == "categorical"
    assert res["features"][0]["samples"] == 400


# --- rejected (counted) values -----------------------------------------------------------------------------


def test_nan_inf_and_empty_cells_are_counted_rejections(tmp_path, monitor, capsys):
    rows = [[v, "free"] for v in SERIES]
    rows[3][0] = "NaN"
    rows[7][0] = "inf"
    rows[8][0] = "-Infinity"
    rows[9][0] = ""  # an empty cell (a blank line would not be a row: see the next test)
    path = write(tmp_path, "nan.csv", csv_of(["latency_ms", "plan"], rows))
    rc, out, err = run([path, "--monitor", monitor, "--json"], capsys)
    assert rc == 0, err
    res = json.loads(out)
    (f,) = res["features"]
    assert f["rejected"] == 4
    assert f["samples"] == len(SERIES) - 4
    assert [r["row"] for r in res["rejections"]] == [3, 7, 8, 9]
    assert res["rejections"][0]["column"] == "latency_ms"
    # rows keep their numbers: the alarm is still at data row 114 (4 of the first 110 samples are gone,
    # so the preset's 100-sample baseline ends later, but the spike rows are unchanged)
    assert res["events"][0]["index"] == START_ROW
    rc, out, _ = run([path, "--monitor", monitor], capsys)
    assert "Rejected 4 cells" in out
    assert "row 3" in out
    assert "Ignored columns (not declared in --monitor): plan" in out


def test_blank_lines_are_not_rows(tmp_path, monitor, capsys):
    # as pandas.read_csv numbers rows: blank lines are skipped, so they do not shift the events
    lines = ["latency_ms", *[str(v) for v in SERIES]]
    lines.insert(5, "")
    lines.insert(50, "")
    path = write(tmp_path, "blank.csv", "\n".join(lines) + "\n\n")
    res = json.loads(run([path, "--monitor", monitor, "--json"], capsys)[1])
    assert [e["index"] for e in res["events"]] == [START_ROW, END_ROW]
    assert res["features"][0]["rejected"] == 0


# --- bad input: exit 2, a message naming the place, no traceback -------------------------------------------


def expect_error(capsys, argv: list[str], *needles: str) -> str:
    rc, out, err = run(argv, capsys)
    assert rc == 2, (out, err)
    assert out == ""
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err
    return err


def test_string_in_numeric_column(tmp_path, capsys):
    rows = [[float(i)] for i in range(50)]
    rows[17] = ["abc"]
    path = write(tmp_path, "s.csv", csv_of(["latency_ms"], rows))
    expect_error(capsys, [path], "data row 17", "'latency_ms'", "'abc'", "not a number")


def test_string_in_declared_numeric_column_later_chunk(tmp_path, monitor, monkeypatch, capsys):
    monkeypatch.setattr(replay, "MIN_CHUNK_ROWS", 10)
    monkeypatch.setattr(replay, "CHUNK_ROWS", 10)
    rows = [[v] for v in SERIES]
    rows[150] = ["12ms"]
    path = write(tmp_path, "s.csv", csv_of(["latency_ms"], rows))
    expect_error(capsys, [path, "--monitor", monitor], "data row 150", "'12ms'")


def test_empty_file(tmp_path, capsys):
    expect_error(capsys, [write(tmp_path, "e.csv", "")], "empty file")


def test_header_only(tmp_path, capsys):
    expect_error(capsys, [write(tmp_path, "h.csv", "x,y\n")], "no data rows")


def test_ragged_row(tmp_path, capsys):
    text = "x,y\n1,2\n3,4\n\n5\n6,7\n"
    expect_error(capsys, [write(tmp_path, "r.csv", text)], "data row 2", "line 5", "1 fields", "header has 2")


def test_not_utf8(tmp_path, capsys):
    p = tmp_path / "latin1.csv"
    p.write_bytes(b"x,plan\n1,free\n2,caf\xe9\n")
    expect_error(capsys, [str(p)], "line 3", "not UTF-8", "0xe9")


def test_missing_file(tmp_path, capsys):
    expect_error(capsys, [str(tmp_path / "nope.csv")], "nope.csv", "no such file")


def test_bad_timestamp(tmp_path, capsys):
    text = csv_of(["timestamp", "x"], [["2026-01-01T00:00:00Z", 1], ["yesterday", 2]])
    expect_error(capsys, [write(tmp_path, "t.csv", text)], "data row 1", "timestamp", "'yesterday'")


def test_duplicate_and_invalid_header(tmp_path, capsys):
    expect_error(capsys, [write(tmp_path, "d.csv", "x,x\n1,2\n")], "header column 2", "'x'")
    expect_error(capsys, [write(tmp_path, "n.csv", "latency ms\n1\n")], "'latency ms'", "feature name")


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("kind: DriftMonitor\nspec: {preset: fastest}\n", ["spec.preset", "'fastest'"]),
        ("kind: DriftMonitor\nspec: {baseline: {minSamples: 5}}\n", ["spec.baseline.minSamples"]),
        ("kind: DriftMonitor\nspec: {features: [{name: other}]}\n", ["spec.features[0].name", "'other'"]),
        ("kind: Deployment\n", ["kind", "DriftMonitor"]),
        ("spec: [unclosed\n", ["invalid YAML", "line"]),
        ("", ["empty file"]),
    ],
)
def test_bad_monitor_file(tmp_path, series_csv, text, needles, capsys):
    mon = write(tmp_path, "bad.yaml", text)
    expect_error(capsys, [series_csv, "--monitor", mon], "--monitor", *needles)


def test_missing_monitor_file(tmp_path, series_csv, capsys):
    expect_error(capsys, [series_csv, "--monitor", str(tmp_path / "none.yaml")], "--monitor", "cannot read")


def test_mostly_numeric_column_with_words_is_an_error_not_categorical(tmp_path, capsys):
    rows = [[str(i)] for i in range(100)]
    rows[40] = ["oops"]
    path = write(tmp_path, "m.csv", csv_of(["x"], rows))
    expect_error(capsys, [path], "data row 40", "'oops'", "type: categorical")


def test_usage_error(capsys):
    rc, _, err = run([], capsys)
    assert rc == 2
    assert "usage" in err


# --- the installed command ---------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = [str(DRIFTWATCH)] if DRIFTWATCH.exists() else [sys.executable, "-m", "driftwatch"]
    return subprocess.run([*exe, "replay", *args], capture_output=True, text=True, timeout=120, check=False)


def test_cli_subprocess(tmp_path, series_csv, monitor):
    p = _cli(series_csv, "--monitor", monitor, "--json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert [e["index"] for e in res["events"]] == [START_ROW, END_ROW]
    p = _cli(series_csv, "--monitor", monitor)
    assert p.returncode == 0
    assert "DRIFT_START" in p.stdout
    bad = write(tmp_path, "bad.csv", "x\n1\nfoo\n2\n3\n")
    p = _cli(bad)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert "data row 1" in p.stderr
    p = _cli(str(tmp_path / "missing.csv"))
    assert p.returncode == 2
    assert "no such file" in p.stderr


# --- baseline.mode fromWindow ------------------------------------------------------------------------------


def test_from_window_baseline_from_timestamp_column(tmp_path, capsys):
    # rows 0..299 at a high level (before the window), rows 300..599 in [start, end), then a shift at 800
    rng = np.random.default_rng(11)
    vals = np.concatenate([rng.normal(500, 5, 300), rng.normal(50, 5, 500), rng.normal(80, 5, 200)])
    rows = [[1_767_225_600 + i, round(float(v), 4)] for i, v in enumerate(vals)]
    mon = write(
        tmp_path,
        "m.yaml",
        "apiVersion: driftwatch.io/v1alpha1\nkind: DriftMonitor\nmetadata: {name: w}\nspec:\n"
        "  baseline: {mode: fromWindow, start: '2026-01-01T00:05:00Z', end: '1767226200'}\n"
        "  sensitivity: {falseAlarmsPer: 1000000}\n",
    )
    path = write(tmp_path, "w.csv", csv_of(["timestamp", "v"], rows))
    rc, out, err = run([path, "--monitor", mon, "--json"], capsys)
    assert rc == 0, err
    res = json.loads(out)
    (f,) = res["features"]
    assert f["baseline"] == "fromWindow"
    assert "300 values in the window" in f["note"]
    assert f["samples"] == 300 + 400  # baseline rows + scored rows 600..999
    assert [e["type"] for e in res["events"]] == ["DRIFT_START"]
    assert 800 <= res["events"][0]["index"] < 820  # Huber-clipped input: >= ~9 samples for h ~ 24
    # without a timestamp column the replay refuses, naming the mode
    path = write(tmp_path, "nots.csv", csv_of(["v"], [[v] for v in rows[:50]]))
    expect_error(capsys, [path, "--monitor", mon], "fromWindow", "'timestamp' column")

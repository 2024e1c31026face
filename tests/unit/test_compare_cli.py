"""``driftwatch compare REF CUR``: files in, one verdict out -- in-process and as the installed command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from driftwatch import compare
from driftwatch.detect.batch import FEATURE_FIELDS

ROOT = Path(__file__).resolve().parents[2]
DRIFTWATCH = ROOT / ".venv" / "bin" / "driftwatch"
FIELDS = set(FEATURE_FIELDS)


def write_csv(path: Path, columns: dict[str, list[object]]) -> str:
    names = list(columns)
    rows = zip(*columns.values(), strict=True)
    path.write_text(",".join(names) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return str(path)


def sample(seed: int, shift: float = 0.0, n: int = 3000) -> dict[str, list[object]]:
    rng = np.random.default_rng(seed)
    shares = [0.6, 0.3, 0.1] if shift == 0 else [0.45, 0.35, 0.2]
    return {
        "timestamp": list(range(n)),
        "latency_ms": [f"{v:.3f}" for v in rng.lognormal(3 + shift, 0.5, n)],
        "amount": [f"{v:.2f}" if i % 50 else "" for i, v in enumerate(rng.normal(100, 10, n))],
        "plan": list(rng.choice(["free", "pro", "team"], n, p=shares)),
    }


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = compare.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str, str]:
    return (
        write_csv(tmp_path / "ref.csv", sample(1)),
        write_csv(tmp_path / "same.csv", sample(2)),
        write_csv(tmp_path / "drifted.csv", sample(3, shift=0.3)),
    )


def test_drift_json_shape_and_exit_code(
    files: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    ref, _, drifted = files
    rc, out, _ = run([ref, drifted, "--json"], capsys)
    d = json.loads(out)
    assert rc == compare.EXIT_DRIFT
    assert set(d) == {"drifted", "share", "features"}
    assert d["drifted"] is True
    assert [f["feature"] for f in d["features"]] == [
        "latency_ms",
        "amount",
        "plan",
    ]  # timestamp: not a feature
    assert all(set(f) == FIELDS for f in d["features"])
    by = {f["feature"]: f for f in d["features"]}
    assert (by["latency_ms"]["test"], by["latency_ms"]["drifted"], by["latency_ms"]["severity"]) == (
        "ks",
        True,
        "critical",
    )
    assert (by["plan"]["type"], by["plan"]["test"], by["plan"]["drifted"]) == ("categorical", "chi2", True)
    assert (by["amount"]["drifted"], by["amount"]["nReference"]) == (False, 2940)  # empty cells dropped
    assert d["share"] == pytest.approx(2 / 3)


def test_no_drift_table_and_exit_code(
    files: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    ref, same, _ = files
    rc, out, _ = run([ref, same], capsys)
    assert rc == compare.EXIT_OK
    assert "no drift in 3 tested features" in out
    assert "p (BH)" in out


def test_options_tests_thresholds_types(
    files: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    ref, _, drifted = files
    argv = [ref, drifted, "--json", "--tests", "cvm,g", "--tests", "amount=ad", "--threshold", "plan=0.5"]
    rc, out, _ = run(argv, capsys)
    by = {f["feature"]: f for f in json.loads(out)["features"]}
    assert [by[n]["test"] for n in ("latency_ms", "amount", "plan")] == ["cvm", "ad", "g"]
    assert (by["plan"]["threshold"], by["plan"]["drifted"]) == (0.5, False)
    rc, out, _ = run(
        [ref, drifted, "--json", "--type", "plan=categorical", "--features", "plan", "--no-fdr"], capsys
    )
    assert [f["feature"] for f in json.loads(out)["features"]] == ["plan"]
    assert rc == compare.EXIT_DRIFT


def test_not_enough_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = write_csv(tmp_path / "a.csv", {"x": [1, 2, 3]})
    cur = write_csv(tmp_path / "b.csv", {"x": [1, 2, 4]})
    rc, out, _ = run([ref, cur], capsys)
    assert rc == compare.EXIT_NO_DATA
    assert "not enough data" in out
    rc, _, _ = run([ref, cur, "--min-samples", "2"], capsys)
    assert rc == compare.EXIT_OK


@pytest.mark.parametrize(
    ("ref_cols", "cur_cols", "extra", "words"),
    [
        ({"x": ["1"] * 30}, {"y": ["1"] * 30}, [], "no column 'x'"),
        ({"x": ["1"] * 30}, {"x": ["1"] * 30, "y": ["2"] * 30}, [], "column 'y' is not in"),
        (
            {"x": ["1"] * 29 + ["oops"]},
            {"x": ["1"] * 30},
            [],
            "data row 29, column 'x': 'oops' is not a number",
        ),
        (
            {"x": ["1"] * 30},
            {"x": ["1"] * 29 + ["oops"]},
            [],
            "'oops' is not a number (the column is numeric",
        ),
        ({"x": ["1"] * 30}, {"x": ["1"] * 30}, ["--tests", "nope"], "unknown test 'nope'"),
        ({"x": ["a"] * 30}, {"x": ["b"] * 30}, ["--tests", "x=ks"], "does not apply to categorical"),
        ({"x": ["1"] * 30}, {"x": ["1"] * 30}, ["--type", "x=text"], "numeric or categorical"),
        ({"x": ["1"] * 30}, {"x": ["1"] * 30}, ["--threshold", "x=big"], "'big' is not a number"),
        (
            {"x": ["1"] * 30},
            {"x": ["1"] * 30},
            ["--threshold", "z=0.1"],
            "feature 'z', which is not compared",
        ),
        ({"x": ["1"] * 30}, {"x": ["1"] * 30}, ["--alpha", "2"], "alpha"),
    ],
)
def test_bad_input_exits_3_naming_the_problem(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    ref_cols: dict[str, list[object]],
    cur_cols: dict[str, list[object]],
    extra: list[str],
    words: str,
) -> None:
    ref = write_csv(tmp_path / "r.csv", ref_cols)
    cur = write_csv(tmp_path / "c.csv", cur_cols)
    rc, out, err = run([ref, cur, *extra], capsys)
    assert rc == compare.EXIT_ERROR
    assert words in err
    assert "Traceback" not in err
    assert out == ""


def test_missing_file_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run([str(tmp_path / "nope.csv"), str(tmp_path / "nope.csv")], capsys)
    assert (rc, "no such file" in err) == (compare.EXIT_ERROR, True)
    rc, _, _ = run([], capsys)
    assert rc == compare.EXIT_ERROR
    rc, out, _ = run(["--help"], capsys)
    assert rc == compare.EXIT_OK
    assert "exit codes:\n  0  no drift\n  1  drift\n  2  not enough data\n  3  error" in out


def test_parquet(tmp_path: Path, files: tuple[str, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(4)
    table = pa.table(
        {
            "latency_ms": rng.lognormal(3.3, 0.5, 3000),
            "amount": pa.array(rng.normal(100, 10, 3000)),
            "plan": pa.array(
                rng.choice(["free", "pro", "team"], 3000, p=[0.45, 0.35, 0.2])
            ).dictionary_encode(),
        }
    )
    path = tmp_path / "cur.parquet"
    pq.write_table(table, path)
    rc, out, _ = run([files[0], str(path), "--json"], capsys)
    by = {f["feature"]: f for f in json.loads(out)["features"]}
    assert rc == compare.EXIT_DRIFT
    assert (by["latency_ms"]["drifted"], by["plan"]["drifted"], by["plan"]["nCurrent"]) == (True, True, 3000)
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    rc, _, err = run([files[0], str(bad)], capsys)
    assert rc == compare.EXIT_ERROR
    assert "not a readable Parquet file" in err


def test_plot_and_installed_command(files: tuple[str, str, str], tmp_path: Path) -> None:
    ref, _, drifted = files
    out = tmp_path / "cmp.png"
    p = subprocess.run(
        [str(DRIFTWATCH), "compare", ref, drifted, "--plot", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 1, p.stderr
    assert "DRIFT in 2 of 3 tested features" in p.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""``driftwatch compare REF CUR``: the batch two-sample tests offline, on two files.

The judgement a scan makes of two time windows, for data at hand -- a notebook's training set against
last week's predictions. Same tests, same effect floor, same multiple-testing control
(``driftwatch.detect.batch``).

The files
---------
* CSV (``.csv``, or anything that is not Parquet), read as ``driftwatch replay`` reads it: a header
  line, one column per feature; ``timestamp`` and ``key`` columns are not features. Parquet
  (``.parquet``/``.pq``) when ``pyarrow`` is installed (``pip install 'driftwatch[parquet]'``).
* A feature's type comes from ``--type FEATURE=numeric|categorical``, else from the reference file
  (every non-empty cell a number: numeric; mostly numbers with some text: an error naming the cell;
  otherwise categorical); the current file is read with the reference's types. Both files must have
  the same feature columns.
* Missing values (empty cells, NaN, inf) are dropped and counted; ``nReference``/``nCurrent`` are the
  values used.

Exit codes (the same as ``driftwatch scan``): 0 no drift, 1 drift, 2 not enough data (no feature had
``--min-samples`` values on both sides), 3 error (bad input, bad option).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from driftwatch.replay import (
    CHUNK_ROWS,
    PROGRESS_MIN_ROWS,
    ReplayError,
    _table,
    infer_type,
    parse_numeric,
    plan_columns,
    read_chunks,
    scan_file,
)
from driftwatch.vocab.spec import MonitorSpec

if TYPE_CHECKING:
    from driftwatch.detect.batch.comparison import Comparison

EXIT_OK, EXIT_DRIFT, EXIT_NO_DATA, EXIT_ERROR = 0, 1, 2, 3
NUMERIC, CATEGORICAL = "numeric", "categorical"
PARQUET_SUFFIXES = (".parquet", ".pq")
#: columns that are never features (as in ``driftwatch replay``)
NOT_FEATURES = ("timestamp", "key")
PLOT_MAX_PANELS = 30
PLOT_TOP_CATEGORIES = 12


class CompareError(Exception):
    """Bad input or option: the message names the file, row, column or option. Exit code 3."""


@dataclass
class Table:
    """The feature columns of one file: float arrays (numeric) or category counts (categorical)."""

    path: str
    rows: int = 0
    numeric: dict[str, list[np.ndarray]] = field(default_factory=dict)
    categorical: dict[str, Counter[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def kind(self, name: str) -> str | None:
        if name in self.numeric:
            return NUMERIC
        if name in self.categorical:
            return CATEGORICAL
        return None

    def values(self, name: str, kind: str) -> Any:
        """The column as ``compare`` takes it: a float array or category counts (empty if no values)."""
        if kind == NUMERIC:
            parts = self.numeric.get(name, [])
            return np.concatenate(parts) if parts else np.empty(0)
        return self.categorical.get(name, Counter())


# --- reading -------------------------------------------------------------------------------------------


def read_table(path: str, kinds: dict[str, str], label: str) -> Table:
    """Read ``path``; ``kinds`` fixes column types (name -> numeric|categorical) and is completed with
    the types inferred here. ``label`` (``REF``/``CUR``) goes into progress lines."""
    if not os.path.exists(path):
        raise CompareError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CompareError(f"{path}: is a directory")
    if path.lower().endswith(PARQUET_SUFFIXES):
        return _read_parquet(path, kinds)
    try:
        return _read_csv(path, kinds, label)
    except ReplayError as e:
        raise CompareError(str(e)) from None


def _read_csv(path: str, kinds: dict[str, str], label: str) -> Table:
    total = max(scan_file(path) - 1, 1)
    table = Table(path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        try:
            header = next(csv.reader([f.readline()]), [])
        except csv.Error as e:
            raise CompareError(f"{path}: line 1: cannot parse the header: {e}") from None
        if not header:
            raise CompareError(f"{path}: empty file (expected a header line, then data rows)")
        layout = plan_columns(header, MonitorSpec(), path)
        columns = [c for c in layout.features if c.name not in NOT_FEATURES]
        table.order = [c.name for c in columns]
        next_pct = 10
        for start, rows in read_chunks(f, path, len(header), CHUNK_ROWS):
            for col in columns:
                cells = [r[col.pos] for r in rows]
                kind = kinds.get(col.name)
                if kind is None:
                    kind = _infer(cells, path, col.name, start)
                    if kind is None:
                        continue  # no values yet: decide on a later chunk
                    kinds[col.name] = kind
                _add(table, col.name, kind, cells, path, start)
            table.rows += len(rows)
            if total > PROGRESS_MIN_ROWS and table.rows * 100 >= next_pct * total:
                pct = min(100, table.rows * 100 // total)
                print(f"driftwatch compare: {label} {table.rows} rows ({pct}%)", file=sys.stderr, flush=True)
                next_pct = (pct // 10 + 1) * 10
    return table


def _infer(cells: list[str], path: str, column: str, start: int) -> str | None:
    t = infer_type(cells)
    if t == "mixed":
        bad = next(i for i, c in enumerate(cells) if c.strip() and parse_numeric([c])[1] == 0)
        raise CompareError(
            f"{path}: data row {start + bad}, column {column!r}: {cells[bad]!r} is not a number, but most "
            f"of the column is (a typo?); say --type {column}=categorical if it is categorical"
        )
    return t


def _add(table: Table, name: str, kind: str, cells: list[str], path: str, start: int) -> None:
    if kind == NUMERIC:
        values, bad = parse_numeric(cells)
        if bad >= 0:
            raise CompareError(
                f"{path}: data row {start + bad}, column {name!r}: {cells[bad]!r} is not a number "
                f"(the column is numeric; say --type {name}=categorical if it is not)"
            )
        table.numeric.setdefault(name, []).append(values)
    else:
        counts = table.categorical.setdefault(name, Counter())
        counts.update(c for c in cells if c.strip())


def _read_parquet(path: str, kinds: dict[str, str]) -> Table:
    try:
        import pyarrow.parquet as pq
        import pyarrow.types as pat
    except ImportError:
        raise CompareError(
            f"{path}: reading Parquet needs pyarrow (pip install 'driftwatch[parquet]'); or convert to CSV"
        ) from None
    try:
        data = pq.read_table(path)
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        raise CompareError(f"{path}: not a readable Parquet file: {e}") from None
    table = Table(path, rows=data.num_rows)
    for name in data.column_names:
        if name in NOT_FEATURES:
            continue
        col = data.column(name)
        typ = col.type
        if pat.is_dictionary(typ):
            col, typ = col.cast(typ.value_type), typ.value_type
        numeric_type = pat.is_integer(typ) or pat.is_floating(typ)
        textual = pat.is_string(typ) or pat.is_large_string(typ) or pat.is_boolean(typ)
        if not (numeric_type or textual):
            raise CompareError(
                f"{path}: column {name!r} has Parquet type {typ}; features are numbers or strings"
            )
        kind = kinds.setdefault(name, NUMERIC if numeric_type else CATEGORICAL)
        table.order.append(name)
        if kind == NUMERIC:
            if not numeric_type:
                raise CompareError(
                    f"{path}: column {name!r} is {typ} in this file but numeric in the reference"
                )
            table.numeric[name] = [col.to_numpy(zero_copy_only=False).astype(np.float64)]
        else:
            table.categorical[name] = Counter(str(v) for v in col.to_pylist() if v is not None and v != "")
    return table


# --- options -------------------------------------------------------------------------------------------


def _pairs(items: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            name, eq, value = part.partition("=")
            if not eq or not name or not value:
                raise CompareError(f"{option} {part!r}: expected FEATURE=VALUE")
            out[name.strip()] = value.strip()
    return out


def _test_options(items: list[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    general: list[str] = []
    per_feature: dict[str, str] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            if "=" in part:
                per_feature.update(_pairs([part], "--tests"))
            else:
                general.append(part)
    return tuple(general) or ("auto",), per_feature


def _thresholds(items: list[str]) -> tuple[float | None, dict[str, float]]:
    general: float | None = None
    per_feature: dict[str, float] = {}
    for item in items:
        name, eq, value = item.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise CompareError(f"--threshold {item!r}: {value!r} is not a number") from None
        if eq:
            per_feature[name] = number
        else:
            general = number
    return general, per_feature


# --- output --------------------------------------------------------------------------------------------


def _fmt(v: float | None, spec: str = ".4g") -> str:
    return "-" if v is None else format(v, spec)


def render_text(result: Comparison, ref: Table, cur: Table, alpha: float, fdr: bool) -> str:
    """A table for people: one line per feature, the verdict first."""
    drifted = [f for f in result.features if f.drifted]
    tested = result.tested
    head = (
        f"DRIFT in {len(drifted)} of {tested} tested features ({result.share:.0%})"
        if result.drifted
        else f"no drift in {tested} tested features"
    )
    lines = [f"{ref.path} ({ref.rows} rows) vs {cur.path} ({cur.rows} rows): {head}", ""]
    p_head = "p (BH)" if fdr else "p-value"
    rows = []
    for f in result.features:
        verdict = f"DRIFT ({f.severity})" if f.drifted else ("not enough data" if not f.tested else "ok")
        rows.append(
            [
                f.feature,
                f.type,
                f.test,
                _fmt(f.statistic),
                _fmt(f.p_value, ".2g"),
                f"{_fmt(f.effect, '.3f')} {f.effect_name}" if f.effect is not None else "-",
                _fmt(f.threshold, "g"),
                f"{f.n_reference}/{f.n_current}",
                verdict,
            ]
        )
    lines.append(
        _table(
            ["feature", "type", "test", "statistic", p_head, "effect", "threshold", "n ref/cur", "verdict"],
            rows,
        )
    )
    lines += [
        "",
        (
            f"drift = significant (p <= {alpha:g}{', Benjamini-Hochberg across features' if fdr else ''}) "
            "and effect >= threshold (the effect floor); distances (psi, jensenshannon, wasserstein) have no "
            "p-value and drift on the threshold alone."
        ),
    ]
    return "\n".join(lines)


def render_plot(result: Comparison, ref: Table, cur: Table, out: str) -> None:
    """Per feature: reference vs current distribution, titled with the verdict."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CompareError("--plot needs matplotlib (pip install 'driftwatch[plot]')") from None
    feats = result.features[:PLOT_MAX_PANELS]
    cols = 2 if len(feats) > 1 else 1
    nrows = (len(feats) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(6.5 * cols, 2.6 * nrows), squeeze=False)
    for ax in axes.flat[len(feats) :]:
        ax.set_visible(False)
    for ax, f in zip(axes.flat, feats, strict=False):
        if f.type == NUMERIC:
            _plot_numeric(ax, ref.values(f.feature, NUMERIC), cur.values(f.feature, NUMERIC))
        else:
            _plot_categorical(ax, ref.values(f.feature, CATEGORICAL), cur.values(f.feature, CATEGORICAL))
        verdict = (
            f"DRIFT ({f.severity})" if f.drifted else ("not enough data" if not f.tested else "no drift")
        )
        stats = f"{f.test} p={_fmt(f.p_value, '.2g')} effect={_fmt(f.effect, '.3f')}"
        ax.set_title(
            f"{f.feature}: {verdict}  [{stats}]",
            fontsize=9,
            loc="left",
            color="tab:red" if f.drifted else "black",
        )
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper right")
    title = f"driftwatch compare: {ref.path} (reference) vs {cur.path} (current)"
    if len(result.features) > len(feats):
        title += f" -- first {len(feats)} of {len(result.features)} features"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    try:
        fig.savefig(out, format="png", dpi=100)
    except OSError as e:
        raise CompareError(f"--plot {out}: cannot write: {e.strerror or e}") from None
    finally:
        plt.close(fig)


def _plot_numeric(ax: Any, ref: np.ndarray, cur: np.ndarray) -> None:
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    pooled = np.concatenate([ref, cur])
    if pooled.size == 0:
        return
    lo, hi = np.quantile(pooled, [0.005, 0.995])  # the body: one extreme value would flatten the rest
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    bins = np.linspace(lo, hi, 60)
    for data, name, color in ((ref, "reference", "tab:blue"), (cur, "current", "tab:orange")):
        if data.size:
            ax.hist(
                data,
                bins=bins,
                density=True,
                histtype="stepfilled",
                alpha=0.35,
                color=color,
                label=f"{name} (n={data.size})",
            )
    ax.set_xlabel("middle 99% of the pooled values", fontsize=7)


def _plot_categorical(ax: Any, ref: Counter[str], cur: Counter[str]) -> None:
    n_ref, n_cur = max(sum(ref.values()), 1), max(sum(cur.values()), 1)
    top = [c for c, _ in (ref + cur).most_common(PLOT_TOP_CATEGORIES)]
    x = np.arange(len(top))
    ax.bar(x - 0.2, [ref[c] / n_ref for c in top], width=0.4, color="tab:blue", label="reference")
    ax.bar(x + 0.2, [cur[c] / n_cur for c in top], width=0.4, color="tab:orange", label="current")
    ax.set_xticks(x, [c[:12] for c in top], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("share", fontsize=7)


# --- the command ---------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from driftwatch.detect.batch import TESTS

    p = argparse.ArgumentParser(
        prog="driftwatch compare",
        description="Batch two-sample drift tests of every feature of REF (reference) against CUR (current).",
        epilog=f"tests: auto (by type and size), {', '.join(TESTS)}\n\n"
        "exit codes:\n  0  no drift\n  1  drift\n  2  not enough data\n  3  error (a file, an option)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("reference", metavar="REF", help="CSV or Parquet file: the reference sample")
    p.add_argument("current", metavar="CUR", help="CSV or Parquet file: the current sample")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--tests",
        action="append",
        default=[],
        metavar="LIST",
        help="comma-separated TEST or FEATURE=TEST; each feature gets its own, else the first listed "
        "TEST that applies to its type, else auto",
    )
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="[FEATURE=]X",
        help="effect floor (distances: drift threshold) for every feature, or for one; default per test",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="false discovery rate (default 0.05)")
    p.add_argument("--no-fdr", action="store_true", help="no Benjamini-Hochberg: alpha per feature")
    p.add_argument(
        "--type", action="append", default=[], metavar="FEATURE=TYPE", help="numeric or categorical"
    )
    p.add_argument("--features", metavar="LIST", help="compare only these (comma-separated)")
    p.add_argument(
        "--min-share", type=float, default=0.0, help="drift only if at least this share of features drift"
    )
    p.add_argument("--min-samples", type=int, default=None, help="values needed on each side (default 20)")
    p.add_argument("--plot", metavar="OUT.png", help="draw reference vs current for each feature")
    return p


def run(args: argparse.Namespace) -> int:
    from driftwatch.detect import InputError
    from driftwatch.detect.batch import MIN_SAMPLES, Options, compare

    declared = _pairs(args.type, "--type")
    kinds = dict(declared)  # completed by reading the files
    for name, kind in declared.items():
        if kind not in (NUMERIC, CATEGORICAL):
            raise CompareError(f"--type {name}={kind}: the type is numeric or categorical")
    tests, feature_tests = _test_options(args.tests)
    threshold, feature_thresholds = _thresholds(args.threshold)
    try:
        options = Options(
            alpha=args.alpha,
            fdr=not args.no_fdr,
            tests=tests,
            feature_tests=feature_tests,
            threshold=threshold,
            feature_thresholds=feature_thresholds,
            min_share=args.min_share,
            min_samples=MIN_SAMPLES if args.min_samples is None else max(1, args.min_samples),
        )
    except ValueError as e:
        raise CompareError(f"bad option: {e}") from None
    ref = read_table(args.reference, kinds, "REF")
    cur = read_table(args.current, kinds, "CUR")
    wanted = [s.strip() for s in args.features.split(",") if s.strip()] if args.features else None
    names = wanted or ref.order
    for name in names:
        for t in (ref, cur):
            if name not in t.order:
                raise CompareError(f"{t.path}: no column {name!r}")
    if wanted is None:
        extra = [n for n in cur.order if n not in ref.order]
        if extra:
            raise CompareError(f"{cur.path}: column {extra[0]!r} is not in {ref.path} (or use --features)")
    for name in (*feature_tests, *feature_thresholds, *declared):
        if name not in names:
            raise CompareError(f"option names feature {name!r}, which is not compared")
    kind_of = {n: kinds.get(n) or ref.kind(n) or cur.kind(n) or NUMERIC for n in names}
    try:
        result = compare(
            {n: ref.values(n, kind_of[n]) for n in names},
            {n: cur.values(n, kind_of[n]) for n in names},
            types=kind_of,
            options=options,
        )
    except InputError as e:
        raise CompareError(f"feature {e}") from None
    if args.plot:
        render_plot(result, ref, cur, args.plot)
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False))
    else:
        print(render_text(result, ref, cur, options.alpha, options.fdr))
    if result.tested == 0:
        return EXIT_NO_DATA
    return EXIT_DRIFT if result.drifted else EXIT_OK


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (argparse printed why)
        return EXIT_OK if not e.code else EXIT_ERROR
    try:
        return run(args)
    except CompareError as e:
        print(f"driftwatch compare: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR

"""Batch drift scan: DriftWatch's ``compare`` vs a plain loop of scipy.stats vs Evidently's DataDriftPreset.

One run, one table, the same arrays for every column. Rows: seconds for 20 numeric features x 1M
reference + 1M current rows and for 20 categorical features with 50 categories; then size and power --
how many clean scans flag anything, how many flag a 0.01 sd shift at 1M rows (too small to matter:
the goal is none), how many detect a 0.1 sd shift at 100k rows (the goal is all). bench/README.md
explains each row.

    .venv/bin/python bench/scan.py              # ~10-15 minutes (Evidently is most of it)
    .venv/bin/python bench/scan.py --quick      # smaller and fewer scans: a smoke run, noisy numbers
    .venv/bin/python bench/scan.py --no-evidently

Progress goes to stderr; the table is the only thing on stdout. Everything runs on one core
(``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` are set to 1 before numpy loads).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

FEATURES = 20
CATEGORIES = 50
ALPHA = 0.05

Data = dict[str, Any]


def progress(msg: str) -> None:
    print(f"[scan bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Verdict:
    """What one method said about one scan: the features it flagged."""

    flagged: set[str]
    seconds: float


# --- the three methods ---------------------------------------------------------------------------------


def driftwatch_scan(ref: Data, cur: Data, kinds: dict[str, str]) -> Verdict:
    from driftwatch.detect.batch import compare

    t0 = time.perf_counter()
    r = compare(ref, cur, types=kinds)
    return Verdict({f.feature for f in r.features if f.drifted}, time.perf_counter() - t0)


def scipy_loop(ref: Data, cur: Data, kinds: dict[str, str]) -> Verdict:
    """What a notebook does: one scipy test per feature at 5%, no correction, no effect size."""
    from scipy.stats import chi2_contingency, ks_2samp

    t0 = time.perf_counter()
    flagged = set()
    for name, kind in kinds.items():
        if kind == "numeric":
            p = ks_2samp(ref[name], cur[name]).pvalue
        else:
            a, b = Counter(ref[name].tolist()), Counter(cur[name].tolist())
            cats = sorted(set(a) | set(b))
            p = chi2_contingency([[a[c] for c in cats], [b[c] for c in cats]]).pvalue
        if p < ALPHA:
            flagged.add(name)
    return Verdict(flagged, time.perf_counter() - t0)


def evidently_preset(ref: Data, cur: Data, kinds: dict[str, str]) -> Verdict:
    """Evidently's DataDriftPreset with its defaults (the test per column is Evidently's choice)."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    t0 = time.perf_counter()
    definition = DataDefinition(
        numerical_columns=[n for n, k in kinds.items() if k == "numeric"],
        categorical_columns=[n for n, k in kinds.items() if k == "categorical"],
    )
    ref_ds = Dataset.from_pandas(pd.DataFrame(ref), data_definition=definition)
    cur_ds = Dataset.from_pandas(pd.DataFrame(cur), data_definition=definition)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset()]).run(current_data=cur_ds, reference_data=ref_ds)
    flagged = set()
    for m in snapshot.dict()["metrics"]:
        cfg = m.get("config") or {}
        if cfg.get("type", "").endswith("ValueDrift"):
            value, threshold = float(m["value"]), float(cfg["threshold"])
            drifted = value < threshold if "p_value" in cfg["method"] else value >= threshold
            if drifted:
                flagged.add(cfg["column"])
    return Verdict(flagged, time.perf_counter() - t0)


METHODS: dict[str, Callable[[Data, Data, dict[str, str]], Verdict]] = {
    "DriftWatch scan": driftwatch_scan,
    "scipy loop": scipy_loop,
    "Evidently preset": evidently_preset,
}


# --- the data ------------------------------------------------------------------------------------------


def numeric(rng: np.random.Generator, n: int, shifts: dict[int, float] | None = None) -> Data:
    shifts = shifts or {}
    return {f"x{i:02d}": rng.normal(shifts.get(i, 0.0), 1.0, n) for i in range(FEATURES)}


def categorical(rng: np.random.Generator, n: int) -> Data:
    """Strings (object arrays, as pandas and CSV readers hold them); feature i has the same uneven
    category shares in every call, so reference and current agree."""
    names = np.array([f"category_{j:02d}" for j in range(CATEGORIES)], dtype=object)
    shares = [np.random.default_rng(i).dirichlet(np.full(CATEGORIES, 5.0)) for i in range(FEATURES)]
    return {f"c{i:02d}": names[rng.choice(CATEGORIES, n, p=shares[i])] for i in range(FEATURES)}


# --- the rows ------------------------------------------------------------------------------------------


def run_methods(methods: list[str], ref: Data, cur: Data, label: str) -> dict[str, Verdict]:
    kinds = {n: ("numeric" if np.asarray(v).dtype.kind == "f" else "categorical") for n, v in ref.items()}
    out = {}
    for m in methods:
        out[m] = METHODS[m](ref, cur, kinds)
        progress(f"{label}: {m} {out[m].seconds:.2f} s, {len(out[m].flagged)} features flagged")
    return out


def seconds_row(results: list[dict[str, Verdict]], methods: list[str]) -> list[str]:
    best = {m: min(r[m].seconds for r in results) for m in methods}
    base = best[methods[0]]
    cells = []
    for m in methods:
        s = best[m]
        cells.append(f"{s:.2f} s" if m == methods[0] else f"{s:.2f} s ({s / base:.0f}x)")
    return cells


def share_row(
    results: list[dict[str, Verdict]], methods: list[str], hit: Callable[[Verdict], bool]
) -> list[str]:
    return [f"{sum(hit(r[m]) for r in results)}/{len(results)}" for m in methods]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller samples and fewer scans (smoke run)")
    p.add_argument("--no-evidently", action="store_true", help="leave Evidently out")
    p.add_argument("--seed", type=int, default=20240601)
    args = p.parse_args(argv)
    methods = list(METHODS)
    if args.no_evidently:
        methods.remove("Evidently preset")
    else:
        try:
            progress("importing evidently (takes a while)")
            import evidently  # noqa: F401
        except ImportError as e:
            progress(f"evidently not importable ({e}); install the bench extra: pip install -e '.[bench]'")
            methods.remove("Evidently preset")
    rng = np.random.default_rng(args.seed)
    big = 100_000 if args.quick else 1_000_000
    mid = 20_000 if args.quick else 100_000
    small = 10_000
    reps_big, reps_clean, reps_power = (1, 10, 4) if args.quick else (2, 100, 20)

    # warm-up: imports and first-call costs are not what the rows measure
    run_methods(
        methods,
        numeric(rng, 2000) | categorical(rng, 2000),
        numeric(rng, 2000) | categorical(rng, 2000),
        "warm-up",
    )

    rows: list[tuple[str, list[str]]] = []
    # 1. speed, numeric -- the current sample carries a 0.01 sd shift in every feature (row 4 reads it)
    tiny = []
    sort_seconds = float("inf")
    for k in range(reps_big):
        progress(f"numeric {FEATURES} x {big:,}/{big:,}, scan {k + 1}/{reps_big}: generating")
        ref, cur = numeric(rng, big), numeric(rng, big, dict.fromkeys(range(FEATURES), 0.01))
        tiny.append(run_methods(methods, ref, cur, f"numeric x {big:,} #{k + 1}"))
        t0 = time.perf_counter()
        for name in ref:
            np.sort(ref[name])
            np.sort(cur[name])
        sort_seconds = min(sort_seconds, time.perf_counter() - t0)
        del ref, cur
    rows.append((f"seconds: {FEATURES} numeric x {big:,} ref + {big:,} cur", seconds_row(tiny, methods)))
    rows.append(
        (
            f"  the machine today: np.sort of those {2 * FEATURES * big // 1_000_000}M values",
            [f"{sort_seconds:.2f} s", *["" for _ in methods[1:]]],
        )
    )
    # 2. speed, categorical
    progress(f"categorical {FEATURES} x {big:,}/{big:,} ({CATEGORIES} categories): generating")
    cat = [run_methods(methods, categorical(rng, big), categorical(rng, big), f"categorical x {big:,}")]
    rows.append(
        (
            f"seconds: {FEATURES} categorical ({CATEGORIES} categories) x {big:,} + {big:,}",
            seconds_row(cat, methods),
        )
    )
    # 3. size: clean scans that flag anything
    clean = []
    for k in range(reps_clean):
        clean.append(
            run_methods(methods, numeric(rng, small), numeric(rng, small), f"clean #{k + 1}/{reps_clean}")
        )
    rows.append(
        (
            f"clean scans flagging anything ({FEATURES} x {small:,}/{small:,}; goal <= 5%)",
            share_row(clean, methods, lambda v: bool(v.flagged)),
        )
    )
    # 4. the effect floor: a 0.01 sd shift at 1M rows (the arrays of row 1)
    rows.append(
        (
            f"scans flagging a 0.01 sd shift ({FEATURES} x {big:,}; goal 0)",
            share_row(tiny, methods, lambda v: bool(v.flagged)),
        )
    )
    # 5. power: a 0.1 sd shift in one feature at 100k rows
    power = []
    for k in range(reps_power):
        ref, cur = numeric(rng, mid), numeric(rng, mid, {0: 0.1})
        power.append(run_methods(methods, ref, cur, f"0.1 sd at {mid:,} #{k + 1}/{reps_power}"))
    rows.append(
        (
            f"scans detecting a 0.1 sd shift in 1 of {FEATURES} ({mid:,} rows; goal all)",
            share_row(power, methods, lambda v: "x00" in v.flagged),
        )
    )
    rows.append(
        (
            "  ... and flagging a clean feature in those scans",
            share_row(power, methods, lambda v: bool(v.flagged - {"x00"})),
        )
    )
    header = ["", *methods]
    table = [header, *[[label, *cells] for label, cells in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in table]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

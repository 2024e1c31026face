"""``driftwatch replay DATA.csv``: the sidecar's detection engine, run offline over a CSV of history.

Same ``Engine``, same spec defaults, same event ids as in a pod -- so a user can see what DriftWatch
(or a compatibility preset) would have flagged before deploying it, and tune ``--monitor`` against
their own data.

The CSV
-------
* The first line is the header. Optional ``timestamp`` column (ISO 8601 -- naive times are UTC -- or
  epoch seconds); optional ``key`` column (or the column named by the monitor's ``spec.keys.label``)
  for per-key streams; every other column is a feature (only the declared ones when ``--monitor``
  declares features).
* Feature types come from the monitor file, else are inferred from the first chunk of rows in which
  the column has values: every non-empty cell a number -> numeric; most cells numbers -> an error at
  the first cell that is not (a typo in a numeric column must not silently turn it categorical; declare
  ``type: categorical`` if it really is); otherwise categorical.
* Blank lines are skipped and are not data rows (``pandas.read_csv`` numbers rows the same way), so
  ``index`` matches a DataFrame's row number. In a one-column file an empty value is therefore a
  blank line, not a missing value.
* Missing values -- an empty cell, ``NaN``, ``inf`` in a numeric column, an empty cell in a categorical
  one -- are *rejected and counted*, never fed: the output names how many per stream and the first
  rows. Everything else that is wrong (a string in a numeric column, a ragged row, a bad timestamp, an
  empty file, a missing file, a bad monitor file) stops the replay with exit code 2 and a message
  naming the row, column or field. No traceback, no partial statistics.

``baseline.mode: fromWindow`` takes its baseline from the rows whose ``timestamp`` is in [start, end)
(the file must have a ``timestamp`` column); ``fromConfigMap`` has no ConfigMap offline, so replay
learns the baseline from the data (each stream's ``note`` says so).

Rows are read in chunks and fed to the engine in one batch per (key, feature) per chunk, with
``index=`` the 0-based data row, so every event's ``index`` is the CSV row at which it fired.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, TextIO

import numpy as np

from driftwatch.vocab.spec import FEATURE_NAME, ConfigError, MonitorSpec, parse_manifest

#: rows parsed and fed per step (at most): bounds memory; progress is reported per chunk
CHUNK_ROWS = 200_000
MIN_CHUNK_ROWS = 10_000
#: progress lines on stderr only for inputs at least this long
PROGRESS_MIN_ROWS = 1_000_000
#: rejected cells listed by row in the output (the count is always complete)
MAX_REJECTION_EXAMPLES = 20
#: points per panel in --plot (longer series are decimated for drawing only)
PLOT_MAX_POINTS = 20_000
PLOT_MAX_PANELS = 24


class ReplayError(Exception):
    """Bad input: the message is for the user and names the row, column or field. Exit code 2."""


# --- the monitor file ----------------------------------------------------------------------------------


def load_monitor(path: str) -> tuple[str, MonitorSpec]:
    """(monitor name, spec) from a DriftMonitor manifest file (YAML or JSON; the first DriftMonitor
    document of a multi-document file)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except OSError as e:
        raise ReplayError(f"--monitor {path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ReplayError(f"--monitor {path}: not a UTF-8 text file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ReplayError(f"--monitor {path}: invalid YAML{where}: {problem}") from None
    if not docs:
        raise ReplayError(f"--monitor {path}: empty file (expected a DriftMonitor manifest)")
    doc = next((d for d in docs if isinstance(d, dict) and d.get("kind") == "DriftMonitor"), docs[0])
    try:
        name, _namespace, spec = parse_manifest(doc)
    except ConfigError as e:
        raise ReplayError(f"--monitor {path}: {e.field}: {e.message}") from None
    return name, spec


# --- parsing cells -------------------------------------------------------------------------------------


def _to_float(cell: str) -> float | None:
    """A number (NaN/inf included: they are numbers, rejected later as missing) or None."""
    try:
        return float(cell)
    except ValueError:
        return None


def parse_numeric(cells: Sequence[str]) -> tuple[np.ndarray, int]:
    """float64 values (NaN for empty cells) and the position of the first non-number, or -1."""
    try:
        return np.array(cells, dtype=np.float64), -1  # fast path: every cell a number
    except ValueError:
        pass
    out = np.empty(len(cells))
    for i, c in enumerate(cells):
        if not c.strip():
            out[i] = np.nan
            continue
        v = _to_float(c)
        if v is None:
            return out, i
        out[i] = v
    return out, -1


def infer_type(cells: Sequence[str]) -> str | None:
    """``numeric``, ``categorical``, ``mixed`` (mostly numbers, some not: an error) or None (no values)."""
    values = [c for c in cells if c.strip()]
    if not values:
        return None
    numbers = sum(1 for c in values if _to_float(c) is not None)
    if numbers == len(values):
        return "numeric"
    return "mixed" if numbers * 2 > len(values) else "categorical"


def parse_timestamp(cell: str) -> float | None:
    """Epoch seconds from epoch seconds or ISO 8601 (naive = UTC); None if neither."""
    c = cell.strip()
    v = _to_float(c)
    if v is not None:
        return v if math.isfinite(v) else None
    try:
        t = datetime.fromisoformat(c)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


def format_time(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


# --- the CSV -------------------------------------------------------------------------------------------


@dataclass
class Column:
    name: str
    pos: int  # position in the header
    kind: str  # numeric | categorical | auto (not decided yet)


@dataclass
class Layout:
    """Which header column is what."""

    header: list[str]
    features: list[Column]
    ts_pos: int | None
    key_pos: int | None
    ignored: list[str] = field(default_factory=list)

    def positions(self) -> list[int]:
        """The header positions read from each row."""
        extra = [p for p in (self.ts_pos, self.key_pos) if p is not None]
        return extra + [c.pos for c in self.features]


def plan_columns(header: list[str], spec: MonitorSpec, path: str, monitor_label: str = "") -> Layout:
    """Assign header columns; ``monitor_label`` (``"--monitor FILE: "``) prefixes spec errors."""
    if not header or all(not h.strip() for h in header):
        raise ReplayError(f"{path}: line 1: empty header")
    names = [h.strip() for h in header]
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if not n:
            raise ReplayError(f"{path}: header column {i + 1} has no name")
        if n in seen:
            raise ReplayError(f"{path}: header column {i + 1} {n!r} repeats column {seen[n] + 1}")
        seen[n] = i
    key_name = spec.keys.label if spec.keys.label and spec.keys.label in seen else "key"
    ts_pos = seen.get("timestamp")
    key_pos = seen.get(key_name)
    if spec.baseline.mode == "fromWindow" and ts_pos is None:
        raise ReplayError(
            f"{path}: {monitor_label}baseline.mode fromWindow needs a 'timestamp' column "
            f"(the baseline is the rows in [{spec.baseline.start}, {spec.baseline.end}))"
        )
    features: list[Column] = []
    ignored: list[str] = []
    for i, n in enumerate(names):
        if i in (ts_pos, key_pos):
            continue
        if not spec.accepts(n):
            ignored.append(n)
            continue
        declared = spec.feature(n)
        if declared is None and not FEATURE_NAME.match(n):
            raise ReplayError(
                f"{path}: header column {i + 1} {n!r} is not a valid feature name "
                f"(must match {FEATURE_NAME.pattern})"
            )
        kind = declared.type if declared is not None else "auto"
        features.append(Column(n, i, kind))
    for j, f in enumerate(spec.features):
        if f.name not in seen:
            raise ReplayError(
                f"{monitor_label}spec.features[{j}].name: feature {f.name!r} is not a column of {path}"
            )
    if not features:
        raise ReplayError(f"{path}: no feature columns (header: {', '.join(names)})")
    return Layout(names, features, ts_pos, key_pos, ignored)


def scan_file(path: str) -> int:
    """One pass over the bytes: the number of lines (for progress) and a UTF-8 check that can name the
    line of a bad byte (a text-mode reader fails a whole buffer ahead, with no line to report)."""
    lines = 0
    carry = b""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            data = carry + chunk
            cut = data.rfind(b"\n") + 1  # decode whole lines only: a newline never splits a character
            piece, carry = data[:cut], data[cut:]
            _check_utf8(piece, lines, path)
            lines += piece.count(b"\n")
    _check_utf8(carry, lines, path)
    return lines + (1 if carry else 0)


def _check_utf8(piece: bytes, lines_before: int, path: str) -> None:
    try:
        piece.decode("utf-8")
    except UnicodeDecodeError as e:
        line = lines_before + piece[: e.start].count(b"\n") + 1
        raise ReplayError(f"{path}: line {line}: not UTF-8 text (byte 0x{piece[e.start]:02x})") from None


def _line_of(path: str, row: int) -> int:
    """File line of data row ``row`` (quoted newlines and blank lines make it differ): error path only."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        seen = -1
        for rec in reader:
            if rec:
                seen += 1
            if seen == row + 1:  # the header is rec 0
                return reader.line_num
    return -1


def read_chunks(f: TextIO, path: str, width: int, chunk_rows: int) -> Iterator[tuple[int, list[list[str]]]]:
    """(first data row index, rows) chunks. Blank lines are skipped (they are not data rows); a ragged
    row is an error naming its data row and file line."""
    reader = csv.reader(f)
    start = 0
    while True:
        try:
            rows = list(itertools.islice(reader, chunk_rows))
        except csv.Error as e:
            raise ReplayError(f"{path}: line {reader.line_num}: malformed CSV: {e}") from None
        if not rows:
            return
        widths = set(map(len, rows))
        if 0 in widths:
            rows = [r for r in rows if r]
            widths.discard(0)
        if widths - {width}:
            bad = next(i for i, r in enumerate(rows) if len(r) != width)
            raise ReplayError(
                f"{path}: data row {start + bad} (line {_line_of(path, start + bad)}) has "
                f"{len(rows[bad])} fields, the header has {width}"
            )
        if rows:
            yield start, rows
        start += len(rows)


# --- the replay ----------------------------------------------------------------------------------------


@dataclass
class StreamData:
    """What --plot needs of one (feature, key) stream: the values, their times, and -- numeric streams
    -- the range the baseline called normal and the drift score, as they stood sample by sample."""

    rows: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    ts: list[np.ndarray] = field(default_factory=list)
    lo: list[np.ndarray] = field(default_factory=list)
    hi: list[np.ndarray] = field(default_factory=list)
    score: list[np.ndarray] = field(default_factory=list)


#: --plot feeds the engine in slices of this many rows to draw the band and the score as they moved
#: (the events are the same for any slicing: the engine does not depend on how a stream is batched)
PLOT_SLICE = 100


class Replay:
    """Feeds parsed chunks to one Engine and collects events, rejections and (for --plot) series."""

    def __init__(self, spec: MonitorSpec, name: str, layout: Layout, path: str, keep_series: bool) -> None:
        from driftwatch.detect import Engine

        self.engine = Engine(spec, name=name)
        self.layout = layout
        self.path = path
        self.keep_series = keep_series
        self.events: list[dict[str, Any]] = []
        self.rejected: dict[tuple[str, str], int] = {}
        self.examples: list[dict[str, Any]] = []
        self.series: dict[tuple[str, str], StreamData] = {}
        self.rows = 0

    def _reject(self, column: str, key: str, rows: np.ndarray, cells: list[str], reason: str) -> None:
        if rows.size == 0:
            return
        self.rejected[(column, key)] = self.rejected.get((column, key), 0) + int(rows.size)
        for r, c in zip(rows[: MAX_REJECTION_EXAMPLES - len(self.examples)], cells, strict=False):
            self.examples.append({"row": int(r), "column": column, "value": c, "reason": reason})

    def feed(self, start: int, rows: list[list[str]]) -> None:
        lay, n = self.layout, len(rows)
        index = np.arange(start, start + n, dtype=np.int64)
        cols = {p: list(map(itemgetter(p), rows)) for p in lay.positions()}
        ts = None
        if lay.ts_pos is not None:
            ts = np.empty(n)
            for i, c in enumerate(cols[lay.ts_pos]):
                v = parse_timestamp(c)
                if v is None:
                    raise ReplayError(
                        f"{self.path}: data row {start + i}, column 'timestamp': {c!r} is neither "
                        "ISO 8601 nor epoch seconds"
                    )
                ts[i] = v
        if lay.key_pos is not None:
            keys = np.array([k.strip() for k in cols[lay.key_pos]])
            uniq, first, inv = np.unique(keys, return_index=True, return_inverse=True)
            order = np.argsort(inv, kind="stable")  # rows grouped by key, in row order within each
            bounds = np.cumsum(np.bincount(inv, minlength=uniq.size))[:-1]
            parts = np.split(order, bounds)
            groups = [(str(uniq[g]), parts[g]) for g in np.argsort(first)]  # keys by first appearance
        else:
            groups = [("", np.arange(n))]
        for col in lay.features:
            cells = cols[col.pos]
            if col.kind == "auto":
                kind = infer_type(cells)
                if kind is None:  # nothing but empty cells so far: decide on a later chunk
                    for key, idx in groups:
                        self._reject(col.name, key, index[idx], [cells[i] for i in idx], "empty")
                    continue
                if kind == "mixed":
                    _, bad = parse_numeric(cells)
                    raise ReplayError(
                        f"{self.path}: data row {start + bad}, column {col.name!r}: {cells[bad]!r} is "
                        "not a number (the column's other values are; declare it "
                        "`type: categorical` in --monitor if it holds categories)"
                    )
                col.kind = kind
            if col.kind == "numeric":
                values, bad = parse_numeric(cells)
                if bad >= 0:
                    raise ReplayError(
                        f"{self.path}: data row {start + bad}, column {col.name!r}: {cells[bad]!r} is "
                        "not a number"
                    )
                ok = np.isfinite(values)
                for key, idx in groups:
                    good = idx[ok[idx]]
                    badi = idx[~ok[idx]]
                    self._reject(col.name, key, index[badi], [cells[i] for i in badi], "missing, NaN or inf")
                    self._update(col.name, key, values[good], index[good], ts, good)
            else:
                arr = np.array(cells, dtype=object)
                ok = np.array([bool(c.strip()) for c in cells], dtype=bool)
                for key, idx in groups:
                    good = idx[ok[idx]]
                    badi = idx[~ok[idx]]
                    self._reject(col.name, key, index[badi], [cells[i] for i in badi], "empty")
                    self._update(col.name, key, arr[good], index[good], ts, good)
        self.rows += n

    def _update(
        self,
        feature: str,
        key: str,
        values: np.ndarray,
        index: np.ndarray,
        ts: np.ndarray | None,
        sel: np.ndarray,
    ) -> None:
        if values.size == 0:
            return
        from driftwatch.detect.base import InputError

        tsel = None if ts is None else ts[sel]
        step = PLOT_SLICE if self.keep_series else values.size
        for i in range(0, values.size, step):
            part, idx = values[i : i + step], index[i : i + step]
            pts = None if tsel is None else tsel[i : i + step]
            try:
                batch = part if part.dtype != object else list(part)
                evs = self.engine.update(feature, batch, key=key, index=idx, ts=pts)
            except (InputError, ConfigError) as e:
                raise ReplayError(f"{self.path}: column {feature!r}: {e}") from None
            self.events.extend(e.to_dict() for e in evs)
            if self.keep_series:
                self._keep(feature, key, part, idx, pts)

    def _keep(self, feature: str, key: str, part: np.ndarray, idx: np.ndarray, ts: np.ndarray | None) -> None:
        s = self.series.setdefault((feature, key), StreamData())
        s.rows.append(idx)
        s.values.append(part)
        s.ts.append(np.full(idx.size, np.nan) if ts is None else ts)
        if part.dtype != object:
            band = self.engine.band(feature, key, idx.size, ts)
            nan = np.full(idx.size, np.nan)
            s.lo.append(nan if band is None else band[0])
            s.hi.append(nan if band is None else band[1])
            s.score.append(np.full(idx.size, self.engine.score(feature, key)))

    def result(self) -> dict[str, Any]:
        fields = (
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
        )
        events = sorted(self.events, key=lambda e: e["index"])  # stable: per-row feature order kept
        features = []
        seen = set()
        for s in self.engine.streams():
            feature, key = s.feature, s.key
            seen.add((feature, key))
            features.append(
                {
                    "feature": feature,
                    "key": key,
                    "state": str(s.state),
                    "samples": int(s.samples),
                    "type": s.type,
                    "score": float(s.score),
                    "severity": s.severity,
                    "rejected": self.rejected.get((feature, key), 0),
                    **({"baseline": s.baseline_source, "note": s.note} if s.note else {}),
                }
            )
        for (feature, key), n in self.rejected.items():  # columns with nothing but rejected cells
            if (feature, key) not in seen:
                features.append(
                    {
                        "feature": feature,
                        "key": key,
                        "state": "Initializing",
                        "samples": 0,
                        "type": "unknown",
                        "score": 0.0,
                        "severity": "none",
                        "rejected": n,
                    }
                )
        features.sort(key=lambda f: (f["feature"], f["key"]))
        out: dict[str, Any] = _json_safe(
            {
                "events": [{k: e.get(k) for k in fields} for e in events],
                "features": features,
                "rows": self.rows,
                "ignored_columns": self.layout.ignored,
                "rejections": self.examples,
            }
        )
        return out


def _json_safe(v: Any) -> Any:
    """numpy scalars -> Python, non-finite floats -> None (JSON has no NaN)."""
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, np.ndarray):
        return _json_safe(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# --- output --------------------------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def render_text(res: dict[str, Any], path: str) -> str:
    evs = res["events"]
    parts = [f"{path}: {res['rows']} rows, {len(res['features'])} streams, {len(evs)} events", ""]
    if evs:
        rows = [
            [
                str(e["index"]),
                format_time(e["timestamp"]),
                e["type"],
                e["feature"],
                e["key"] or "-",
                e["detector"],
                f"{e['score']:.2f}",
                e["severity"],
            ]
            for e in evs
        ]
        parts += [
            "Events",
            _table(["row", "time", "type", "feature", "key", "detector", "score", "severity"], rows),
        ]
    else:
        parts.append("Events: none")
    parts.append("")
    frows = [
        [
            f["feature"],
            f["key"] or "-",
            f["type"],
            f["state"],
            str(f["samples"]),
            str(f["rejected"]),
            f"{f['score']:.2f}",
            f["severity"],
        ]
        for f in res["features"]
    ]
    parts += [
        "Final state",
        _table(["feature", "key", "type", "state", "samples", "rejected", "score", "severity"], frows),
    ]
    if res["rejections"]:
        shown = ", ".join(f"row {r['row']} {r['column']}={r['value']!r}" for r in res["rejections"][:5])
        total = sum(f["rejected"] for f in res["features"])
        parts += ["", f"Rejected {total} cells (missing, NaN, inf): {shown}{' ...' if total > 5 else ''}"]
    if res["ignored_columns"]:
        parts += ["", f"Ignored columns (not declared in --monitor): {', '.join(res['ignored_columns'])}"]
    return "\n".join(parts)


def render_plot(rep: Replay, res: dict[str, Any], out: str) -> None:
    """One panel per (feature, key): the values over time (or rows, without timestamps), the range the
    baseline called normal at each moment (shaded band: it follows the daily profile and moves when a
    drift is adopted), drift periods shaded red, events marked, and the drift score (right axis, the
    dashed line is the alarm level 0.5)."""
    try:
        import matplotlib
    except ImportError:
        raise ReplayError("--plot needs matplotlib (pip install 'driftwatch[plot]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    streams = sorted(rep.series)[:PLOT_MAX_PANELS]
    if len(rep.series) > PLOT_MAX_PANELS:
        print(
            f"driftwatch replay: --plot shows the first {PLOT_MAX_PANELS} of {len(rep.series)} streams",
            file=sys.stderr,
        )
    n = max(len(streams), 1)
    fig, axes = plt.subplots(n, 1, figsize=(12, 2.6 * n + 0.6), sharex=True, squeeze=False)
    timed = all(np.isfinite(np.concatenate(rep.series[k].ts)).all() for k in streams) if streams else False
    for ax, (feature, key) in zip(axes[:, 0], streams, strict=False):
        s = rep.series[(feature, key)]
        rows = np.concatenate(s.rows)
        vals = np.concatenate(s.values)
        xs = np.concatenate(s.ts).astype("datetime64[s]") if timed else rows
        to_x = dict(zip(rows.tolist(), range(rows.size), strict=True))
        step = max(1, rows.size // PLOT_MAX_POINTS)
        if vals.dtype == object:  # categorical: share of each top category per block of samples
            cats, inv, counts = np.unique(vals.astype(str), return_inverse=True, return_counts=True)
            block = max(20, rows.size // 300)
            nb = rows.size // block
            if nb:
                blk = inv[: nb * block].reshape(nb, block)
                mid = (np.arange(nb) * block + block // 2).astype(np.int64)
                for c in np.argsort(-counts)[:6]:
                    ax.plot(xs[mid], (blk == c).mean(axis=1), lw=0.9, label=str(cats[c])[:16])
                ax.set_ylabel("share", fontsize=7)
                ax.legend(fontsize=6, loc="upper left", ncol=6)
        else:
            lo, hi = np.concatenate(s.lo), np.concatenate(s.hi)
            ax.fill_between(
                xs[::step], lo[::step], hi[::step], color="0.85", lw=0, label="baseline: normal range"
            )
            ax.plot(xs[::step], vals[::step], lw=0.5, color="tab:blue")
            finite = vals[np.isfinite(vals)]
            if finite.size:  # the band must not flatten the series: keep the view on the values
                pad = 0.05 * (float(finite.max() - finite.min()) or 1.0)
                ax.set_ylim(float(finite.min()) - pad, float(finite.max()) + pad)
            sc = ax.twinx()
            sc.plot(xs[::step], np.concatenate(s.score)[::step], lw=0.6, color="tab:purple", alpha=0.7)
            sc.axhline(0.5, color="tab:purple", lw=0.5, ls="--")
            sc.set_ylim(0, 1.05)
            sc.set_ylabel("score", fontsize=7, color="tab:purple")
            sc.tick_params(labelsize=6, colors="tab:purple")
        evs = [e for e in res["events"] if e["feature"] == feature and e["key"] == key]
        begin = None
        for e in evs:
            at = xs[to_x.get(e["index"], rows.size - 1)]
            if e["type"] == "DRIFT_START":
                begin = at
                ax.axvline(at, color="tab:red", lw=0.8)
            else:
                ax.axvline(at, color="tab:green", lw=0.8)
                if begin is not None:
                    ax.axvspan(begin, at, color="tab:red", alpha=0.12)
                begin = None
        if begin is not None:
            ax.axvspan(begin, xs[-1], color="tab:red", alpha=0.12)
        ax.set_title(f"{feature}" + (f" [{key}]" if key else ""), fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("time (UTC)" if timed else "CSV data row")
    fig.suptitle(
        "driftwatch replay: grey = the baseline's normal range, red = drifting (DRIFT_START red line, "
        "DRIFT_END green), purple = score",
        fontsize=9,
    )
    fig.tight_layout()
    try:
        fig.savefig(out, format="png", dpi=100)
    except OSError as e:
        raise ReplayError(f"--plot {out}: cannot write: {e.strerror or e}") from None
    finally:
        plt.close(fig)


# --- the command ---------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="driftwatch replay",
        description="Run the DriftWatch detection engine offline over a CSV of history.",
        epilog="exit codes:\n  0  replayed\n  1  stdout closed early (a pager or head left)\n"
        "  2  bad option, or a file or spec that cannot be read",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", metavar="DATA.csv", help="header row; optional timestamp and key columns")
    p.add_argument(
        "--monitor", metavar="FILE", help="a DriftMonitor manifest (YAML/JSON) to take the spec from"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--plot", metavar="OUT.png", help="draw each stream with drift periods shaded")
    return p


def run(args: argparse.Namespace) -> int:
    name, spec = load_monitor(args.monitor) if args.monitor else ("replay", MonitorSpec())
    path = args.data
    if not os.path.exists(path):
        raise ReplayError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ReplayError(f"{path}: is a directory")
    total = max(scan_file(path) - 1, 1)  # minus the header: data rows, give or take blank lines
    try:
        f = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as e:
        raise ReplayError(f"{path}: cannot read: {e.strerror or e}") from None
    with f:
        try:
            header = next(csv.reader([f.readline()]), [])
        except (csv.Error, UnicodeDecodeError) as e:
            raise ReplayError(f"{path}: line 1: cannot parse the header: {e}") from None
        if not header:
            raise ReplayError(f"{path}: empty file (expected a header line, then data rows)")
        label = f"--monitor {args.monitor}: " if args.monitor else ""
        layout = plan_columns(header, spec, path, label)
        rep = Replay(spec, name, layout, path, keep_series=bool(args.plot))
        progress = total > PROGRESS_MIN_ROWS
        next_pct = 10  # report at every 10% crossed (integers: no float drift)
        try:
            chunk_rows = max(MIN_CHUNK_ROWS, min(CHUNK_ROWS, total // 20))
            for start, rows in read_chunks(f, path, len(header), chunk_rows):
                rep.feed(start, rows)
                if progress and rep.rows * 100 >= next_pct * total:
                    pct = min(100, rep.rows * 100 // total)
                    print(f"driftwatch replay: {rep.rows} rows ({pct}%)", file=sys.stderr, flush=True)
                    next_pct = (pct // 10 + 1) * 10
        except UnicodeDecodeError as e:
            raise ReplayError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start} of a chunk)") from None
    if rep.rows == 0:
        raise ReplayError(f"{path}: no data rows after the header")
    res = rep.result()
    if args.plot:
        render_plot(rep, res, args.plot)
    if args.json:
        print(json.dumps(res, allow_nan=False))
    else:
        print(render_text(res, path))
    return 0


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2): argparse already printed why
        return int(e.code or 0)
    try:
        return run(args)
    except ReplayError as e:
        print(f"driftwatch replay: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `driftwatch replay ... | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail too
        return 1

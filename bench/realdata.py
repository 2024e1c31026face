"""Real-data benchmark: DriftWatch and the anchors on labelled real monitoring series (NAB).

    .venv/bin/python bench/realdata.py [--dir ../shared/realdata/nab] [--plot DIR] [--monitor FILE ...]
    .venv/bin/python bench/realdata.py --frontier docs/img/nab-frontier.png

Reads ``GROUP/FILE.csv`` (``timestamp,value``) and ``windows.json`` (labelled anomaly windows) from the
NAB layout (``../shared/realdata/nab/README.md``). Every method sees every series once, start to end.

Scoring (as the data's README says): an alarm is a ``DRIFT_START`` (for the anchors: a detection); a
window is *hit* when at least one alarm falls inside it; an alarm outside every window is a *false
alarm*, counted per 10,000 rows outside windows; the *delay* is from a window's first row to its first
alarm (median over hit windows). ``longest Drifting`` is the longest run of rows a stream spent between
a DRIFT_START and its DRIFT_END (or the end of the series): the lifecycle bounds it by ``adopt.after``.

Methods (columns):

* ``DriftWatch`` -- ``driftwatch replay``'s engine and reader with the default spec (what a user gets
  with no monitor file), the CSV's timestamps passed on as replay does;
* ``zscore-consec`` / ``sustained-z`` -- the compatibility presets, through the same reader;
* ``PageHinkley`` / ``ADWIN`` -- River's detectors with default parameters, fed the series standardised
  by the mean and std of its first 1,000 rows (as in ``bench/detection.py``);
* ``seed rules`` -- the seed's z-score rules (5 consecutive |z| > 3, or 10 of the last 20 with
  |z| > 2.5; a baseline of the last 1,000 rows, refreshed every 50 while quiet) that re-learn their
  baseline after each alarm: after a detection the rule starts over and learns a new 1,000-row
  baseline from the rows that follow, as the seed system did.
* ``--monitor FILE`` adds a column per DriftMonitor manifest (e.g. to compare ``adopt`` settings).

Progress goes to stderr; the tables are the only thing on stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from driftwatch.replay import Replay, load_monitor, plan_columns, read_chunks
from driftwatch.vocab.spec import MonitorSpec

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "realdata" / "nab"
WARMUP = 1_000  # rows the anchors are standardised on (bench/detection.py's warm-up)
GROUPS = ("realKnownCause", "realTraffic", "realAdExchange", "artificialWithAnomaly", "artificialNoAnomaly")


# --- the data -------------------------------------------------------------------------------------


@dataclass
class Series:
    key: str  # GROUP/FILE.csv
    path: Path
    ts: np.ndarray  # epoch seconds
    values: np.ndarray
    windows: list[tuple[int, int]]  # inclusive row ranges

    @property
    def group(self) -> str:
        return self.key.split("/", 1)[0]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.split(".")[0]).replace(tzinfo=UTC).timestamp()


def load(root: Path) -> list[Series]:
    labels = json.loads((root / "windows.json").read_text())
    out = []
    for key in sorted(
        labels, key=lambda k: (GROUPS.index(k.split("/")[0]) if k.split("/")[0] in GROUPS else 9, k)
    ):
        path = root / key
        with path.open(newline="") as f:
            rows = list(csv.reader(f))[1:]
        ts = np.array([_epoch(r[0]) for r in rows])
        values = np.array([float(r[1]) for r in rows])
        windows = []
        for a, b in labels[key]:
            lo, hi = _epoch(a), _epoch(b)
            idx = np.flatnonzero((ts >= lo) & (ts <= hi))
            if idx.size:
                windows.append((int(idx[0]), int(idx[-1])))
        out.append(Series(key, path, ts, values, windows))
    return out


# --- methods --------------------------------------------------------------------------------------


@dataclass
class Run:
    alarms: list[int]
    drifting: list[tuple[int, int]] = field(default_factory=list)  # (start, end) rows spent Drifting
    #: per alarm (DriftWatch only): the detector, and what came before it (first, adopted, recovered)
    causes: list[tuple[str, str]] = field(default_factory=list)


class Method:
    name = ""

    def run(self, s: Series) -> Run:
        raise NotImplementedError


class DriftWatch(Method):
    """The replay path: ``driftwatch replay``'s reader and engine, chunked as replay chunks."""

    def __init__(self, name: str, spec: MonitorSpec) -> None:
        self.name = name
        self.spec = spec

    def run(self, s: Series) -> Run:
        with s.path.open(encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader([f.readline()]))
            layout = plan_columns(header, self.spec, str(s.path))
            rep = Replay(self.spec, "bench", layout, str(s.path), keep_series=False)
            for start, rows in read_chunks(f, str(s.path), len(header), 10_000):
                rep.feed(start, rows)
        alarms, drifting, causes, since, before = [], [], [], None, "first"
        for e in sorted(rep.events, key=lambda e: e["index"]):
            if e["type"] == "DRIFT_START":
                alarms.append(int(e["index"]))
                causes.append((str(e.get("detector") or "?"), before))
                since = int(e["index"])
            else:
                before = str((e.get("evidence") or {}).get("reason") or "ended")
                if since is not None:
                    drifting.append((since, int(e["index"])))
                    since = None
        if since is not None:
            drifting.append((since, s.values.size))
        return Run(alarms, drifting, causes)


def standardise(x: np.ndarray) -> np.ndarray:
    mu, sd = float(np.mean(x[:WARMUP])), float(np.std(x[:WARMUP]))
    return (x - mu) / (sd if sd > 0 else 1.0)


class River(Method):
    def __init__(self, name: str, factory: Callable[[], Any]) -> None:
        self.name = name
        self.factory = factory

    def run(self, s: Series) -> Run:
        det = self.factory()
        alarms = []
        for i, v in enumerate(standardise(s.values).tolist()):
            det.update(v)
            if det.drift_detected:
                alarms.append(i)
        return Run(alarms)


class SeedRules(Method):
    """The zscore-consecutive rules, restarted after every alarm: a new 1,000-row baseline is learned
    from the rows that follow (the seed system's re-learning), then the rules run again."""

    name = "seed rules"
    RELEARN = 1_000

    def run(self, s: Series) -> Run:
        from driftwatch.detect.presets import ZScoreConsecutive

        x = standardise(s.values)
        alarms: list[int] = []
        i = 0
        while i < x.size:
            m = ZScoreConsecutive(min_samples=self.RELEARN, window=self.RELEARN)
            starts = [t.position for t in m.update(x[i:]) if t.type.value == "DRIFT_START"]
            if not starts:
                break
            alarms.append(i + starts[0])
            i += starts[0] + 1
        return Run(alarms)


def methods(extra: list[str]) -> list[Method]:
    from river import drift

    ms: list[Method] = [
        DriftWatch("DriftWatch", MonitorSpec()),
        DriftWatch("zscore-consec", MonitorSpec.parse({"preset": "zscore-consecutive"})),
        DriftWatch("sustained-z", MonitorSpec.parse({"preset": "sustained-zscore"})),
        River("PageHinkley", drift.PageHinkley),
        River("ADWIN", drift.ADWIN),
        SeedRules(),
    ]
    for path in extra:
        _, spec = load_monitor(path)
        ms.append(DriftWatch(Path(path).stem, spec))
    return ms


# --- scoring --------------------------------------------------------------------------------------


@dataclass
class Score:
    windows: int = 0
    hit: int = 0
    false_alarms: int = 0
    rows_outside: int = 0
    delays: list[int] = field(default_factory=list)
    longest: int = 0

    def add(self, s: Series, r: Run) -> None:
        inside = np.zeros(s.values.size, bool)
        for a, b in s.windows:
            inside[a : b + 1] = True
        self.rows_outside += int(np.count_nonzero(~inside))
        al = np.asarray(r.alarms, np.int64)
        self.false_alarms += int(np.count_nonzero(~inside[al])) if al.size else 0
        for a, b in s.windows:
            self.windows += 1
            hits = al[(al >= a) & (al <= b)]
            if hits.size:
                self.hit += 1
                self.delays.append(int(hits[0]) - a)
        for a, b in r.drifting:
            self.longest = max(self.longest, b - a)

    def merge(self, o: Score) -> Score:
        return Score(
            self.windows + o.windows,
            self.hit + o.hit,
            self.false_alarms + o.false_alarms,
            self.rows_outside + o.rows_outside,
            self.delays + o.delays,
            max(self.longest, o.longest),
        )

    @property
    def fa_rate(self) -> float:
        return self.false_alarms / max(self.rows_outside, 1) * 10_000

    def cells(self, drift: bool) -> list[str]:
        med = f"{np.median(self.delays):.0f}" if self.delays else "-"
        return [
            f"{self.hit}/{self.windows}",
            f"{self.fa_rate:.1f}",
            str(self.false_alarms),
            med,
            f"{self.longest:,}" if drift else "n/a",
        ]


HEAD = ["windows hit", "FA/10k rows", "false alarms", "median delay", "longest Drifting"]


def table(title: str, ms: list[Method], scores: list[Score]) -> str:
    w0 = max(16, *(len(m.name) + 2 for m in ms))
    lines = [title, "".ljust(w0) + "".join(h.rjust(18) for h in HEAD), "-" * (w0 + 18 * len(HEAD))]
    for m, sc in zip(ms, scores, strict=True):
        lines.append(m.name.ljust(w0) + "".join(c.rjust(18) for c in sc.cells(isinstance(m, DriftWatch))))
    return "\n".join(lines)


# --- the trade-off curves -------------------------------------------------------------------------

#: each method's one knob, from sensitive to quiet (River's defaults: PageHinkley threshold 50, ADWIN
#: delta 0.002; DriftWatch's default falseAlarmsPer 10,000)
KNOBS: dict[str, tuple[str, list[float]]] = {
    "DriftWatch": ("falseAlarmsPer", [1e3, 3e3, 1e4, 3e4, 1e5, 1e6, 1e7]),
    "PageHinkley": ("threshold", [25, 50, 100, 200, 400, 800, 1600]),
    "ADWIN": ("delta", [0.05, 2e-3, 1e-5, 1e-10, 1e-20, 1e-40]),
}
TARGET = (1.0, 25)  # issue 8: at least 25 of 49 windows at no more than 1 false alarm per 10,000 rows


def knob_method(name: str, value: float) -> Method:
    from functools import partial

    from river import drift

    if name == "DriftWatch":
        spec = MonitorSpec.parse({"sensitivity": {"falseAlarmsPer": int(value)}})
        return DriftWatch(f"{name} {value:g}", spec)
    if name == "PageHinkley":
        return River(f"{name} {value:g}", partial(drift.PageHinkley, threshold=value))
    return River(f"{name} {value:g}", partial(drift.ADWIN, delta=value))


def frontier(series: list[Series], out: Path | None) -> str:
    """Every method over its one knob: windows hit against false alarms per 10,000 rows. A method's
    default is one point on its curve; whether a target is reachable is a question about the curve."""
    curves: dict[str, list[tuple[float, Score]]] = {}
    for name, (_, values) in KNOBS.items():
        for v in values:
            t = time.perf_counter()
            m, sc = knob_method(name, v), Score()
            for s in series:
                sc.add(s, m.run(s))
            curves.setdefault(name, []).append((v, sc))
            print(f"bench: frontier {m.name}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    lines = [
        "\ntrade-off curves (every method over its one knob; all 29 series)",
        f"{'method':<14}{'knob':>16}{'value':>10}{'windows hit':>14}{'FA/10k rows':>14}",
        "-" * 68,
    ]
    for name, pts in curves.items():
        for v, sc in pts:
            lines.append(
                f"{name:<14}{KNOBS[name][0]:>16}{v:>10g}{sc.hit:>10}/{sc.windows:<3}{sc.fa_rate:>14.1f}"
            )
    lines.append(f"\nbest within {TARGET[0]:g} FA/10k rows (target: {TARGET[1]} windows)")
    for name, pts in curves.items():
        ok = [(sc.hit, -sc.fa_rate, v) for v, sc in pts if sc.fa_rate <= TARGET[0]]
        best = max(ok) if ok else None
        said = f"{best[0]} windows at {-best[1]:.1f} ({KNOBS[name][0]} {best[2]:g})" if best else "no setting"
        lines.append(f"  {name:<14}{said}")
    if out is not None:
        plot_frontier(curves, out)
        lines.append(f"\nplot: {out}")
    return "\n".join(lines)


def plot_frontier(curves: dict[str, list[tuple[float, Score]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for k, (name, pts) in enumerate(curves.items()):
        x = [max(sc.fa_rate, 0.05) for _, sc in pts]
        y = [sc.hit for _, sc in pts]
        ax.plot(x, y, "o-", color=f"C{k}", label=f"{name} ({KNOBS[name][0]})")
        for (v, _), xi, yi in zip(pts, x, y, strict=True):
            ax.annotate(f"{v:g}", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.axvspan(0.04, TARGET[0], ymin=0, ymax=1, color="0.9", lw=0)
    ax.plot([TARGET[0]], [TARGET[1]], "*", color="k", ms=14, label="issue 8 target")
    ax.set_xscale("log")
    ax.set_xlim(0.04, 100)
    ax.set_xlabel("false alarms per 10,000 rows outside windows (log; 0 drawn at 0.05)")
    ax.set_ylabel("labelled windows hit (of 49)")
    ax.set_title("NAB, 29 series: each method over its one knob", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


# --- plots ----------------------------------------------------------------------------------------


def plot_series(s: Series, ms: list[Method], runs: list[Run], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    t = np.array(s.ts, dtype="datetime64[s]")
    fig, ax = plt.subplots(figsize=(14, 4.5))
    ax.plot(t, s.values, lw=0.5, color="0.25")
    for a, b in s.windows:
        ax.axvspan(t[a], t[b], color="tab:orange", alpha=0.2, lw=0)
    lo, hi = float(np.min(s.values)), float(np.max(s.values))
    span = (hi - lo) or 1.0
    for k, (m, r) in enumerate(zip(ms, runs, strict=True)):
        y = hi + span * (0.06 + 0.07 * k)
        for a, b in r.drifting:
            ax.plot([t[a], t[min(b, t.size - 1)]], [y, y], color=f"C{k}", lw=3, alpha=0.35)
        if r.alarms:
            ax.plot(
                t[np.asarray(r.alarms)], np.full(len(r.alarms), y), "v", color=f"C{k}", ms=5, label=m.name
            )
        else:
            ax.plot([], [], "v", color=f"C{k}", label=f"{m.name} (none)")
    ax.set_title(f"{s.key}: labelled windows shaded; alarms per method (bars: time Drifting)", fontsize=10)
    ax.xaxis.set_major_formatter(cast(Any, mdates).DateFormatter("%m-%d"))  # untyped in matplotlib
    ax.legend(fontsize=7, loc="upper left", ncol=len(ms))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="NAB layout: GROUP/FILE.csv + windows.json")
    p.add_argument("--plot", metavar="DIR", type=Path, help="draw each series with windows and alarms")
    p.add_argument("--monitor", action="append", default=[], metavar="FILE", help="extra DriftWatch column")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        help="only these methods (repeat, or comma-separated)",
    )
    p.add_argument("--series", help="only series whose key contains this text")
    p.add_argument("--per-series", action="store_true", help="also print a line per series (first method)")
    p.add_argument(
        "--causes",
        action="store_true",
        help="count the first method's hits and false alarms by detector and by what preceded them",
    )
    p.add_argument(
        "--frontier",
        metavar="OUT.png",
        type=Path,
        help="instead of the tables: every method over its one knob, the best within 1 FA/10k, and a plot",
    )
    args = p.parse_args(argv)
    if not (args.dir / "windows.json").exists():
        print(f"bench: {args.dir}/windows.json not found (use --dir)", file=sys.stderr)
        return 2
    series = load(args.dir)
    if args.series:
        series = [s for s in series if args.series in s.key]
    if args.frontier:
        print(frontier(series, args.frontier))
        return 0
    ms = methods(args.monitor)
    if args.only:
        wanted = {n.strip() for arg in args.only for n in arg.split(",")}
        ms = [m for m in ms if m.name in wanted]
        if not ms:
            names = [m.name for m in methods(args.monitor)]
            p.error(f"--only: no method named {sorted(wanted)}; methods: {names}")
    per_group: dict[str, list[Score]] = {}
    causes: dict[tuple[str, str, str], int] = {}  # (HIT|FA, detector or preceded by, value) -> alarms
    t_all = time.perf_counter()
    for i, s in enumerate(series, 1):
        t = time.perf_counter()
        runs = [m.run(s) for m in ms]
        scores = per_group.setdefault(s.group, [Score() for _ in ms])
        for sc, r in zip(scores, runs, strict=True):
            sc.add(s, r)
        if args.per_series:
            one = Score()
            one.add(s, runs[0])
            print(
                f"  {s.key:<58} "
                + " ".join(c.rjust(10) for c in one.cells(True))
                + f"  alarms {runs[0].alarms}"
            )
        if args.causes:
            for at, (det, before) in zip(runs[0].alarms, runs[0].causes, strict=False):
                kind = "HIT" if any(a <= at <= b for a, b in s.windows) else "FA"
                for what, value in (("detector", det), ("after", before)):
                    causes[(kind, what, value)] = causes.get((kind, what, value), 0) + 1
        if args.plot:
            plot_series(s, ms, runs, args.plot / (s.key.replace("/", "__").removesuffix(".csv") + ".png"))
        print(
            f"bench: [{i}/{len(series)}] {s.key} ({s.values.size} rows) {time.perf_counter() - t:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    total = [Score() for _ in ms]
    for g, scores in per_group.items():
        print(table(f"\n{g} ({sum(1 for s in series if s.group == g)} series)", ms, scores))
        total = [a.merge(b) for a, b in zip(total, scores, strict=True)]
    print(
        table(
            f"\nall groups ({len(series)} series, {total[0].windows} windows, "
            f"{total[0].rows_outside:,} rows outside windows)",
            ms,
            total,
        )
    )
    if args.causes:
        print(f"\n{ms[0].name}: alarms by detector and by what preceded them (first: the first baseline)")
        for what in ("detector", "after"):
            names = sorted({v for (_, w, v) in causes if w == what})
            print(f"  {what:<10}" + "".join(f"{n:>19}" for n in names))
            for kind in ("HIT", "FA"):
                print(f"  {kind:<10}" + "".join(f"{causes.get((kind, what, n), 0):>19}" for n in names))
    print(f"bench: total {time.perf_counter() - t_all:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

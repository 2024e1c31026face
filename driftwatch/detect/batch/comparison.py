"""``compare``: every feature of a reference sample against the current sample, one verdict.

Per feature: the named or chosen test (``registry``), then two conditions for drift -- the difference
is *significant* after Benjamini-Hochberg across the features (hypothesis tests) and *large enough to
matter*: ``effect >= threshold`` (the effect floor). Distances have no p-value and decide on the
threshold alone. The result's ``to_dict`` is what ``driftwatch compare --json`` prints and what a scan
writes into ``status.lastScan``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftwatch.detect.base import InputError

from .categorical_tests import CategoricalPair
from .choice import AUTO, TestChoiceError, choose, instantiate, pick
from .fdr import benjamini_hochberg
from .numeric_tests import NumericPair
from .two_sample import CATEGORICAL, NUMERIC, Pair, Score, TwoSampleTest, infer_type

#: fewer usable values than this on either side: the feature is reported, not tested
MIN_SAMPLES = 20
#: the keys of one feature's record, in order (``compare --json``, ``status.lastScan``)
FEATURE_FIELDS = (
    "feature",
    "type",
    "test",
    "statistic",
    "pValue",
    "effect",
    "threshold",
    "drifted",
    "severity",
    "nReference",
    "nCurrent",
)


@dataclass(frozen=True)
class Options:
    """How features are judged. Per-feature maps override the global settings."""

    #: false discovery rate across features (per feature without ``fdr``)
    alpha: float = 0.05
    #: Benjamini-Hochberg across the features of one comparison
    fdr: bool = True
    #: for each feature, the first of these that applies to its type (``auto``: by type and size)
    tests: tuple[str, ...] = (AUTO,)
    feature_tests: Mapping[str, str] = field(default_factory=dict)
    #: the effect floor / distance threshold for every feature (None: each test's default)
    threshold: float | None = None
    feature_thresholds: Mapping[str, float] = field(default_factory=dict)
    #: the comparison drifts when at least this share of the tested features drift (0: any one)
    min_share: float = 0.0
    min_samples: int = MIN_SAMPLES

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha: must be in (0, 1), got {self.alpha}")
        if not 0.0 <= self.min_share <= 1.0:
            raise ValueError(f"min_share: must be in [0, 1], got {self.min_share}")
        for name, t in (("threshold", self.threshold), *self.feature_thresholds.items()):
            if t is not None and not (t >= 0 and np.isfinite(t)):
                raise ValueError(f"threshold {name}: must be a finite number >= 0, got {t}")


@dataclass
class FeatureResult:
    """One feature's verdict. ``p_value`` is the Benjamini-Hochberg adjusted p-value (the raw one
    without FDR control): the feature is significant when ``p_value <= alpha``."""

    feature: str
    type: str
    test: str
    statistic: float | None
    p_value: float | None
    effect: float | None
    threshold: float
    drifted: bool
    severity: str
    n_reference: int
    n_current: int
    #: p-value before the multiple-testing adjustment (not in ``to_dict``)
    p_raw: float | None = None
    #: what ``effect`` measures (``wasserstein (sd)``, ``jensen-shannon``, ``psi``, ...)
    effect_name: str = ""

    @property
    def tested(self) -> bool:
        return self.statistic is not None

    def to_dict(self) -> dict[str, Any]:
        values = (
            self.feature,
            self.type,
            self.test,
            self.statistic,
            self.p_value,
            self.effect,
            self.threshold,
            self.drifted,
            self.severity,
            self.n_reference,
            self.n_current,
        )
        return dict(zip(FEATURE_FIELDS, values, strict=True))


@dataclass
class Comparison:
    drifted: bool
    share: float
    features: list[FeatureResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "share": self.share,
            "features": [f.to_dict() for f in self.features],
        }

    @property
    def tested(self) -> int:
        return sum(1 for f in self.features if f.tested)


def prepare(feature: str, kind: str, reference: Any, current: Any) -> Pair:
    """The pair of one feature; a value that does not fit its type raises ``InputError``."""
    if kind == CATEGORICAL:
        return CategoricalPair.from_values(reference, current)
    try:
        return NumericPair(reference, current)
    except (TypeError, ValueError) as e:
        raise InputError(feature, f"numeric feature has a value that is not a number ({e})") from None


def compare(
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
    types: Mapping[str, str] | None = None,
    options: Options | None = None,
) -> Comparison:
    """Compare the features of ``reference`` (name -> values) with the same features of ``current``.

    ``types`` fixes a feature's type (``numeric`` | ``categorical``); otherwise it is inferred from the
    reference's values. A feature missing from ``current``, an unknown or inapplicable test, or a
    value that does not fit its type raises ``InputError`` naming the feature.

    >>> import numpy as np
    >>> rng = np.random.default_rng(5)
    >>> ref = {"latency": rng.lognormal(3, 0.5, 50_000), "plan": rng.choice(["free", "pro"], 50_000)}
    >>> cur = {"latency": rng.lognormal(3.05, 0.5, 50_000), "plan": rng.choice(["free", "pro"], 50_000)}
    >>> r = compare(ref, cur)
    >>> r.drifted, r.share, [(f.feature, f.test, f.drifted, f.severity) for f in r.features]
    (True, 0.5, [('latency', 'ks', True, 'warning'), ('plan', 'chi2', False, 'none')])
    """
    opts = options or Options()
    types = types or {}
    for name in current:
        if name not in reference:
            raise InputError(name, "is in the current sample but not in the reference")
    results: list[FeatureResult] = []
    scores: list[Score | None] = []
    tests: list[TwoSampleTest | None] = []
    for name, ref_values in reference.items():
        if name not in current:
            raise InputError(name, "is in the reference but not in the current sample")
        kind = types.get(name) or infer_type(ref_values)
        if kind not in (NUMERIC, CATEGORICAL):
            raise InputError(name, f"type must be numeric or categorical, got {kind!r}")
        pair = prepare(name, kind, ref_values, current[name])
        try:
            wanted = opts.feature_tests.get(name) or pick(opts.tests, kind)
            test = choose(pair) if wanted == AUTO else instantiate(wanted, kind)
        except TestChoiceError as e:
            raise InputError(name, str(e)) from None
        threshold = opts.feature_thresholds.get(name, opts.threshold)
        if threshold is None:
            threshold = test.threshold(kind)
        enough = pair.n >= opts.min_samples and pair.m >= opts.min_samples
        score = test.score(pair) if enough else None
        scores.append(score)
        tests.append(test)
        results.append(
            FeatureResult(
                feature=name,
                type=kind,
                test=test.name,
                statistic=_num(score.statistic) if score else None,
                p_value=None,
                effect=_num(score.effect) if score else None,
                threshold=float(threshold),
                drifted=False,
                severity="none",
                n_reference=pair.n,
                n_current=pair.m,
                p_raw=_num(score.p_value) if score and score.p_value is not None else None,
                effect_name=test.effect_name(kind),
            )
        )
        del pair
    _decide(results, tests, opts)
    tested = [r for r in results if r.tested]
    drifted = [r for r in tested if r.drifted]
    share = len(drifted) / len(tested) if tested else 0.0
    return Comparison(bool(drifted) and share >= opts.min_share, share, results)


def _decide(results: Sequence[FeatureResult], tests: Sequence[TwoSampleTest | None], opts: Options) -> None:
    """Adjust the p-values across features, then apply significance, the floor and severity."""
    with_p = [r for r in results if r.p_raw is not None]
    adjusted = benjamini_hochberg([r.p_raw for r in with_p if r.p_raw is not None]) if opts.fdr else None
    for i, r in enumerate(with_p):
        r.p_value = adjusted[i] if adjusted is not None else r.p_raw
    for r, test in zip(results, tests, strict=True):
        if not r.tested or r.effect is None or test is None:
            continue
        significant = test.is_distance or (r.p_value is not None and r.p_value <= opts.alpha)
        r.drifted = significant and r.effect >= r.threshold
        if r.drifted:
            r.severity = "critical" if r.effect >= max(test.critical(r.type), r.threshold) else "warning"


def _num(v: float) -> float:
    """A JSON-safe float: the statistics here are finite, but a NaN must never reach a status patch."""
    f = float(v)
    return f if np.isfinite(f) else 0.0

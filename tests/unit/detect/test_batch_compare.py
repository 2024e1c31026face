"""driftwatch.detect.batch.comparison: the effect floor, Benjamini-Hochberg across features, test choice
and overrides, the result record, and errors that name the feature."""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftwatch.detect import InputError
from driftwatch.detect.batch import FEATURE_FIELDS, Options, compare

FIELDS = [
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
]


def test_tiny_shift_at_a_million_rows_is_significant_but_below_the_floor() -> None:
    rng = np.random.default_rng(0)
    r = compare({"x": rng.normal(size=1_000_000)}, {"x": rng.normal(0.01, 1.0, size=1_000_000)})
    f = r.features[0]
    assert f.p_value is not None
    assert f.p_value < 1e-6
    assert f.effect is not None
    assert f.effect < 0.02
    assert not f.drifted
    assert not r.drifted
    assert f.severity == "none"


def test_small_shift_at_100k_rows_drifts() -> None:
    rng = np.random.default_rng(1)
    r = compare({"x": rng.normal(size=100_000)}, {"x": rng.normal(0.1, 1.0, size=100_000)})
    f = r.features[0]
    assert f.drifted
    assert f.severity == "warning"
    assert f.effect == pytest.approx(0.1, abs=0.02)


def test_floor_is_configurable_globally_and_per_feature() -> None:
    rng = np.random.default_rng(2)
    ref = {"a": rng.normal(size=50_000), "b": rng.normal(size=50_000)}
    cur = {"a": rng.normal(0.1, 1, size=50_000), "b": rng.normal(0.1, 1, size=50_000)}
    r = compare(ref, cur, options=Options(threshold=0.2, feature_thresholds={"b": 0.05}))
    assert [(f.feature, f.threshold, f.drifted) for f in r.features] == [("a", 0.2, False), ("b", 0.05, True)]
    r0 = compare(ref, cur, options=Options(threshold=0.0))  # no floor: significance alone
    assert all(f.drifted for f in r0.features)


def test_critical_severity_for_large_effects() -> None:
    rng = np.random.default_rng(3)
    r = compare({"x": rng.normal(size=5000)}, {"x": rng.normal(1.0, 1.0, size=5000)})
    assert r.features[0].severity == "critical"


def test_benjamini_hochberg_is_on_by_default() -> None:
    rng = np.random.default_rng(4)
    # 20 clean features: how many scans flag anything with and without BH
    flagged = {True: 0, False: 0}
    for _ in range(40):
        ref = {f"f{i}": rng.normal(size=300) for i in range(20)}
        cur = {f"f{i}": rng.normal(size=300) for i in range(20)}
        for fdr in (True, False):
            r = compare(ref, cur, options=Options(fdr=fdr, threshold=0.0))
            flagged[fdr] += r.drifted
    assert flagged[True] <= 6  # ~5% of 40 expected
    assert flagged[False] >= 15  # ~64% expected at 5% per feature
    r = compare(ref, cur)
    f = r.features[0]
    assert f.p_raw is not None
    assert f.p_value is not None
    assert f.p_value >= f.p_raw


def test_tests_chosen_by_type_and_size_and_overridable() -> None:
    rng = np.random.default_rng(5)
    ref = {
        "latency": rng.lognormal(size=2000),
        "rating": rng.integers(1, 6, size=2000),
        "plan": rng.choice(["free", "pro", "team"], size=2000),
    }
    cur = {k: v[::-1].copy() for k, v in ref.items()}
    assert [f.test for f in compare(ref, cur).features] == ["ks", "chi2", "chi2"]
    opts = Options(tests=("cvm", "g"), feature_tests={"latency": "ad"})
    assert [f.test for f in compare(ref, cur, options=opts).features] == ["ad", "cvm", "g"]
    opts = Options(tests=("psi",))
    r = compare(ref, cur, options=opts)
    assert [f.test for f in r.features] == ["psi"] * 3
    assert all(f.p_value is None and f.threshold == 0.1 for f in r.features)
    r = compare(ref, cur, types={"rating": "categorical"})
    assert r.features[1].type == "categorical"


def test_distances_decide_on_their_threshold_alone() -> None:
    rng = np.random.default_rng(6)
    r = compare(
        {"x": rng.normal(size=10_000)},
        {"x": rng.normal(0.3, 1, size=10_000)},
        options=Options(tests=("wasserstein",)),
    )
    f = r.features[0]
    assert (f.test, f.p_value, f.drifted, f.severity) == ("wasserstein", None, True, "critical")
    assert f.statistic == f.effect


def test_result_record_is_the_compare_json_shape() -> None:
    rng = np.random.default_rng(7)
    r = compare(
        {"x": rng.normal(size=500), "c": rng.choice(["a", "b"], size=500), "few": [1.0] * 5},
        {"x": rng.normal(size=400), "c": rng.choice(["a", "b"], size=400), "few": [1.0] * 5},
    )
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert list(d) == ["drifted", "share", "features"]
    assert all(list(f) == FIELDS for f in d["features"])
    assert tuple(FIELDS) == FEATURE_FIELDS
    few = d["features"][2]
    assert (few["statistic"], few["pValue"], few["drifted"], few["nReference"]) == (None, None, False, 5)
    assert r.tested == 2
    assert d["share"] == 0.0


def test_share_and_min_share() -> None:
    rng = np.random.default_rng(8)
    ref = {f"f{i}": rng.normal(size=5000) for i in range(4)}
    cur = {f"f{i}": rng.normal(1.0 if i == 0 else 0.0, 1, size=5000) for i in range(4)}
    r = compare(ref, cur)
    assert (r.drifted, r.share) == (True, 0.25)
    assert not compare(ref, cur, options=Options(min_share=0.5)).drifted


@pytest.mark.parametrize(
    ("ref", "cur", "kwargs", "feature", "words"),
    [
        ({"a": [1.0] * 30}, {"b": [1.0] * 30}, {}, "b", "not in the reference"),
        ({"a": [1.0] * 30, "b": [2.0] * 30}, {"a": [1.0] * 30}, {}, "b", "not in the current"),
        ({"a": [1.0] * 30}, {"a": ["x"] * 30}, {}, "a", "not a number"),
        ({"a": ["x"] * 30}, {"a": ["y"] * 30}, {"options": Options(feature_tests={"a": "ks"})}, "a", "only"),
        ({"a": [1.0] * 30}, {"a": [1.0] * 30}, {"options": Options(tests=("nope",))}, "a", "unknown test"),
        ({"a": [1.0] * 30}, {"a": [1.0] * 30}, {"types": {"a": "text"}}, "a", "numeric or categorical"),
    ],
)
def test_errors_name_the_feature(ref: dict, cur: dict, kwargs: dict, feature: str, words: str) -> None:
    with pytest.raises(InputError, match=words) as e:
        compare(ref, cur, **kwargs)
    assert e.value.feature == feature


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="alpha"):
        Options(alpha=1.5)
    with pytest.raises(ValueError, match="threshold b"):
        Options(feature_thresholds={"b": -1.0})


def test_types_inferred_from_python_values() -> None:
    r = compare(
        {"n": [1.0, None, 2, 3.5] * 10, "c": ["a", None, "b", ""] * 10, "b": [True, False] * 20},
        {"n": [1.5, 2.0, None, 3] * 10, "c": ["a", "b", "b", "a"] * 10, "b": [True, True] * 20},
    )
    assert [(f.feature, f.type, f.n_reference) for f in r.features] == [
        ("n", "numeric", 30),
        ("c", "categorical", 20),
        ("b", "categorical", 40),
    ]

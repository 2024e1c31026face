"""``driftwatch.detect.batch``: two-sample tests of a reference sample against a current one.

The batch counterpart of the streaming detectors: ``driftwatch compare`` runs it on two files, a scan
on two time windows. Pure numpy/scipy, no I/O. ``compare`` judges every feature (test chosen per type
and size or named, Benjamini-Hochberg across features, an effect floor); the tests are usable alone
through the ``TwoSampleTest`` contract (``KS().compare(ref, cur) -> Score``).
"""

from .ad import AndersonDarling
from .categorical_tests import CategoricalPair, count_values
from .chisquare import ChiSquare
from .choice import AUTO, TESTS, TestChoiceError, choose
from .comparison import FEATURE_FIELDS, MIN_SAMPLES, Comparison, FeatureResult, Options, compare
from .cvm import CramerVonMises
from .fdr import benjamini_hochberg
from .jensenshannon import JensenShannon
from .ks import KS
from .likelihood_ratio import GTest
from .numeric_tests import NumericPair
from .psi import PSI
from .two_sample import CATEGORICAL, EFFECTS, NUMERIC, DistanceTest, Effect, Score, TwoSampleTest, infer_type
from .wasserstein import Wasserstein

__all__ = [
    "AUTO",
    "CATEGORICAL",
    "EFFECTS",
    "FEATURE_FIELDS",
    "KS",
    "MIN_SAMPLES",
    "NUMERIC",
    "PSI",
    "TESTS",
    "AndersonDarling",
    "CategoricalPair",
    "ChiSquare",
    "Comparison",
    "CramerVonMises",
    "DistanceTest",
    "Effect",
    "FeatureResult",
    "GTest",
    "JensenShannon",
    "NumericPair",
    "Options",
    "Score",
    "TestChoiceError",
    "TwoSampleTest",
    "Wasserstein",
    "benjamini_hochberg",
    "choose",
    "compare",
    "count_values",
    "infer_type",
]

"""The detectors: one statistic each, on an already-standardised stream, behind ``base.Detector``.

Each is usable on its own (River-style: ``update(batch)`` returns the first alarm's position) and is
the definition of what the default monitors run: the numeric monitor executes the CUSUMs, the shape
test and the tail-mixture test together in one fused loop (``kernel.py``), the categorical monitor
runs the G-test directly.
"""

from .cusum import Cusum, lindley
from .gtest import WindowedGTest
from .scale import ScaleCusum, abs_deviation
from .shape import WindowedShape, quantile_bins, two_sample_chi2
from .tail import TailMixture

__all__ = [
    "Cusum",
    "ScaleCusum",
    "TailMixture",
    "WindowedGTest",
    "WindowedShape",
    "abs_deviation",
    "lindley",
    "quantile_bins",
    "two_sample_chi2",
]

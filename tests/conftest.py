"""Test-session settings shared by every layer.

Hypothesis: locally each run explores new random examples (that is how it found the subnormal-value
bug in the quantile sketch); under ``CI=true`` it is derandomized, so a gate run is repeatable and a
red CI always means a change, not a lucky draw. Failures found locally become explicit tests.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

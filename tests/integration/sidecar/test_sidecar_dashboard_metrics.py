"""A real sidecar exports what the dashboard's drift panels read: baseline against current quantiles,
when a drift started, and the key cap beside the keys admitted."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest
from sidecar_helpers import SidecarProc, baseline_samples

pytestmark = pytest.mark.integration


def test_quantiles_since_and_key_cap(sidecar_factory: Callable[..., SidecarProc]) -> None:
    sc = sidecar_factory()
    assert sc.post({"samples": baseline_samples(400)}).status == 202
    sc.wait_for(lambda: (sc.stream("latency_ms") or {}).get("state") == "Stable", what="Stable")

    def quantiles(window: str) -> dict[str, float]:
        return {
            dict(ls)["quantile"]: v
            for (n, ls), v in sc.metrics().items()
            if n == f"driftwatch_{window}_quantile" and ("feature", "latency_ms") in ls
        }

    base = quantiles("baseline")
    assert set(base) == {"0.5", "0.95", "0.99"}
    assert 95 < base["0.5"] < 105 < base["0.95"] < base["0.99"] < 140  # N(100, 10)
    assert set(quantiles("current")) == set(base)
    assert sc.metric("driftwatch_drift_since_timestamp_seconds") == 0  # no series: nothing drifts
    assert sc.metric("driftwatch_keys_max") == 20
    assert sc.metric("driftwatch_keys") == 1  # the empty key

    before = time.time()
    rng = random.Random(1)
    spike = [{"feature": "latency_ms", "value": rng.gauss(160, 10)} for _ in range(400)]
    assert sc.post({"samples": spike}).status == 202
    sc.wait_for(lambda: (sc.stream("latency_ms") or {}).get("state") == "Drifting", what="Drifting")
    since = sc.metric("driftwatch_drift_since_timestamp_seconds", feature="latency_ms")
    assert before - 1 <= since <= time.time()  # the alarming sample's arrival time
    # the shift, as the dashboard's quantile panel shows it (the baseline may have taken in the spike's
    # first samples, before the alarm, but not the bulk of it)
    assert quantiles("current")["0.5"] > quantiles("baseline")["0.99"]

"""The monitor-level vote: one pod's false alarm must not make the whole monitor Drifting."""

from __future__ import annotations

import json
import random

import numpy as np

from driftwatch.config import MonitorSpec
from driftwatch.detect import Engine
from driftwatch.detect.aggregate import aggregate
from driftwatch.simulate import make_sample

SPEC = MonitorSpec.parse({"features": [{"name": "latency_ms", "type": "numeric"}]})


def pod_summary(values: np.ndarray, pod: str) -> dict:
    eng = Engine(SPEC, name="payments")
    for i in range(0, len(values), 30):
        eng.update("latency_ms", values[i : i + 30])
    s: dict = json.loads(json.dumps(eng.summary()))
    s["pod"] = pod
    return s


def normal_traffic(seed: int, n: int) -> np.ndarray:
    rng = random.Random(seed)
    return np.array([make_sample(rng, "latency_ms", "numeric", "normal", 0.0, 1.0) for _ in range(n)])


def test_one_pods_false_alarm_is_not_the_monitors() -> None:
    # seed 1 of `driftwatch simulate --mode normal` holds a genuine false alarm of the per-pod
    # detector (CUSUM down at sample 570, within the 1-per-10k budget); seed 2 does not
    alarmed = pod_summary(normal_traffic(1, 600), "pod-a")
    quiet = pod_summary(normal_traffic(2, 600), "pod-b")
    assert alarmed["streams"][0]["state"] == "Drifting"
    assert quiet["streams"][0]["state"] == "Stable"
    (feature,) = aggregate([alarmed, quiet], SPEC)
    assert feature.state == "Stable"
    assert feature.to_dict()["evidence"]["podsDrifting"] == 1


def test_a_change_every_pod_sees_is_the_monitors() -> None:
    shifted = [np.concatenate([normal_traffic(s, 1000), normal_traffic(s + 10, 300) + 30]) for s in (2, 3)]
    pods = [pod_summary(v, f"pod-{i}") for i, v in enumerate(shifted)]
    assert all(p["streams"][0]["state"] == "Drifting" for p in pods)
    (feature,) = aggregate(pods, SPEC)
    assert feature.state == "Drifting"
    assert feature.severity == "critical"

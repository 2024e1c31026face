"""Schemathesis against a live sidecar's ``/openapi.json`` (issue 12): every documented operation, with
bodies that follow the schema and bodies that break it, never gets a 5xx -- bad input is a 4xx naming
the problem -- and every answer is one the document describes.

Complements ``tests/integration/sidecar/test_sidecar_openapi.py`` (hand-picked examples) and
``test_sidecar_hostile.py`` (the hostile bodies found by review): here the schema drives the inputs.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from reliability_helpers import record
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

pytestmark = pytest.mark.integration
pytest_plugins = ["sidecar_rel"]

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


#: examples per operation and mode (8 operations x 2 modes)
EXAMPLES = 100


def test_no_5xx_and_answers_as_documented(sidecar_factory: Any) -> None:
    """Schemathesis's strategies driven here rather than by its pytest plugin (which reads a private
    attribute pytest 9 no longer has): each operation, valid inputs then invalid ones."""
    # with OTLP configured, so that POST /v1/metrics (protobuf and OTLP/JSON bodies) is fuzzed too
    otlp = {"ingest": {"otlp": {"metrics": {"http.server.request.duration": "latency_ms"}}}}
    sc = sidecar_factory(limits={"bodyLimit": 65536}, spec=otlp)
    schema = schemathesis.openapi.from_url(f"{sc.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert "/v1/metrics" in {op.path for op in operations}
    assert len(operations) >= 8
    counts: dict[str, int] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
            def call(case: Any) -> None:
                response = case.call_and_validate(base_url=sc.url, checks=CHECKS)
                key = f"{response.status_code}"
                counts[key] = counts.get(key, 0) + 1

            try:
                call()
            except Unsatisfiable:  # an operation without inputs has no invalid ones (GET /healthz)
                assert mode is GenerationMode.NEGATIVE
    record(
        operations=len(operations),
        requests=sum(counts.values()),
        statuses=", ".join(f"{n} x {code}" for code, n in sorted(counts.items(), key=lambda c: -c[1])),
        answered_5xx=sum(n for code, n in counts.items() if code.startswith("5")),
    )
    assert not any(code.startswith("5") for code in counts)

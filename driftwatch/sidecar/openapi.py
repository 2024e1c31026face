"""``GET /openapi.json``: the OpenAPI 3.1 document of what this sidecar really does.

It is generated from the running config, so the request schemas carry this monitor's declared
features and their types: a body the schema accepts is one the server accepts whole, and a body it
rejects is one the server answers with 400 or with per-sample rejections (tests check both ways).
What a schema cannot know — duplicates, lateness, the key cap, timestamps too far ahead — is stated
in the descriptions.
"""

from __future__ import annotations

from typing import Any

from driftwatch import version
from driftwatch.detect.engine import OVERFLOW_KEY
from driftwatch.sidecar.settings import Settings
from driftwatch.sidecar.validate import MAX_CATEGORY_LEN, MAX_ID_LEN, MAX_KEY_LEN, REASONS
from driftwatch.vocab.spec import FEATURE_NAME
from driftwatch.vocab.states import Phase

#: what datetime.fromisoformat accepts, near enough (date, optional time and zone)
ISO_8601 = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$"
NUMBER: dict[str, Any] = {"type": "number"}
CATEGORY: dict[str, Any] = {"type": ["string", "integer"], "maxLength": MAX_CATEGORY_LEN}
ANY_VALUE: dict[str, Any] = {"type": ["number", "string"], "maxLength": MAX_CATEGORY_LEN}
KEY: dict[str, Any] = {
    "type": ["string", "null"],
    "maxLength": MAX_KEY_LEN,
    "pattern": "^[^\\u0000-\\u001f\\u007f]*$",
}
TS: dict[str, Any] = {
    "description": "event time: epoch seconds or ISO 8601; defaults to arrival time",
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "string", "format": "date-time", "pattern": ISO_8601},
        {"type": "null"},
    ],
}
ID: dict[str, Any] = {
    "description": "idempotency id: a repeat within the dedup window is rejected as duplicate",
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": MAX_ID_LEN},
        {"type": "integer"},
        {"type": "null"},
    ],
}


def _value_schema(ftype: str) -> dict[str, Any]:
    schemas: dict[str, dict[str, Any]] = {"numeric": NUMBER, "categorical": CATEGORY}
    return schemas.get(ftype, ANY_VALUE)


def schemas(s: Settings) -> dict[str, Any]:
    """Component schemas for this config."""
    spec = s.spec
    if spec.features:
        sample: dict[str, Any] = {
            "type": "object",
            "required": ["feature", "value"],
            "properties": {
                "feature": {"enum": [f.name for f in spec.features]},
                "key": KEY,
                "ts": TS,
                "id": ID,
            },
            "oneOf": [
                {"properties": {"feature": {"const": f.name}, "value": _value_schema(f.type)}}
                for f in spec.features
            ],
        }
        values: dict[str, Any] = {
            "type": "object",
            "minProperties": 1,
            "properties": {f.name: _value_schema(f.type) for f in spec.features},
            "additionalProperties": False,
        }
    else:
        sample = {
            "type": "object",
            "required": ["feature", "value"],
            "properties": {
                "feature": {"type": "string", "pattern": FEATURE_NAME.pattern},
                "value": ANY_VALUE,
                "key": KEY,
                "ts": TS,
                "id": ID,
            },
        }
        values = {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": FEATURE_NAME.pattern},
            "additionalProperties": ANY_VALUE,
        }
    column: dict[str, Any] = {
        "type": "object",
        "required": ["feature", "values"],
        "description": "column form: one feature, many values (the fastest shape); the whole body only. "
        "ts: one time for all or one per value (as many as values); id: names the whole batch; "
        "rejections index into values",
        "properties": {
            "feature": sample["properties"]["feature"],
            "values": {"type": "array", "minItems": 1},
            "key": KEY,
            "id": ID,
            "ts": {"anyOf": [*TS["anyOf"], {"type": "array", "items": TS["anyOf"][0]}]},
        },
    }
    if spec.features:
        column["oneOf"] = [
            {"properties": {"feature": {"const": f.name}, "values": {"items": _value_schema(f.type)}}}
            for f in spec.features
        ]
    else:
        column["properties"]["values"]["items"] = ANY_VALUE
    wide = {
        "type": "object",
        "required": ["values"],
        "properties": {"values": values, "key": KEY, "ts": TS, "id": ID},
        "description": "one observation of several features; each entry of values is a sample",
    }
    envelope = {
        "type": "object",
        "required": ["samples"],
        "properties": {"samples": {"type": "array", "items": {"$ref": "#/components/schemas/Sample"}}},
    }
    return {
        "Sample": sample,
        "WideSample": wide,
        "SamplesBody": {
            "anyOf": [
                {"$ref": "#/components/schemas/Envelope"},
                {"$ref": "#/components/schemas/WideSample"},
                {"$ref": "#/components/schemas/ColumnBody"},
                {
                    "type": "array",
                    "items": {
                        "anyOf": [
                            {"$ref": "#/components/schemas/Sample"},
                            {"$ref": "#/components/schemas/WideSample"},
                        ]
                    },
                },
            ]
        },
        "Envelope": envelope,
        "ColumnBody": column,
        "Telemetry": {
            "type": "object",
            "required": ["service_id", "latency_ms", "payload_kb"],
            "properties": {
                "service_id": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LEN},
                "latency_ms": NUMBER,
                "payload_kb": NUMBER,
                "timestamp": TS,
            },
        },
        "TelemetryBody": {
            "anyOf": [
                {"$ref": "#/components/schemas/Telemetry"},
                {"type": "array", "items": {"$ref": "#/components/schemas/Telemetry"}},
            ]
        },
        "IngestResult": {
            "type": "object",
            "required": ["accepted", "rejected"],
            "properties": {
                "accepted": {"type": "integer", "minimum": 0},
                "rejected": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["index", "error", "reason"],
                        "properties": {
                            "index": {"type": "integer", "minimum": 0},
                            "error": {"type": "string", "description": "names the field"},
                            "reason": {"enum": list(REASONS)},
                        },
                    },
                },
            },
        },
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "Status": {
            "type": "object",
            "required": ["monitor", "namespace", "pod", "phase", "redis", "queue", "streams"],
            "properties": {
                "monitor": {"type": "string"},
                "namespace": {"type": "string"},
                "pod": {"type": "string"},
                "phase": {"enum": [str(p) for p in Phase]},
                "accepting": {"type": "boolean"},
                "redis": {"type": "object"},
                "queue": {"type": "object"},
                "keys": {"type": "integer"},
                "streams": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["feature", "key", "state", "score", "severity"],
                        "description": "engine StreamStatus: feature, key, type, state, score, severity, "
                        "detector, "
                        "since, samples, rejected, baseline and current summaries",
                    },
                },
            },
        },
        "Events": {
            "type": "object",
            "required": ["total", "events"],
            "properties": {
                "total": {"type": "integer"},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
                "events": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "type", "feature", "key"],
                        "description": "DriftEvent: id, type, feature, key, index, timestamp, detector, "
                        "score, "
                        "severity, onset, evidence",
                    },
                },
            },
        },
        "Probe": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
    }


def _resp(desc: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {
        "description": desc,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }
    if headers:
        r["headers"] = headers
    return r


RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}


def _ingest_op(summary: str, body_schema: str, description: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": description,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{body_schema}"}},
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "description": "one JSON object per line (each a sample or wide object); "
                    "a malformed line "
                    "is rejected on its own (reason invalid_json) with its line index",
                },
            },
        },
        "responses": {
            "202": _resp(
                "accepted samples are queued for the engine; the rest are listed with the field at fault",
                "IngestResult",
            ),
            "400": _resp("malformed JSON or a body of the wrong shape", "Error"),
            "401": _resp("bearer token required (auth configured)", "Error"),
            "413": _resp("body over the configured limit (default 1 MiB)", "Error"),
            "429": _resp(
                "queue full: nothing of this body was accepted; retry after Retry-After", "Error", RETRY_AFTER
            ),
            "503": _resp("shutting down", "Error", RETRY_AFTER),
        },
    }


#: a google.rpc.Status as OTLP/JSON writes it (protobuf when the request was protobuf)
RPC_STATUS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "integer", "description": "google.rpc.Code"},
        "message": {"type": "string"},
        "details": {"type": "array"},
    },
}
OTLP_PROTOBUF = "application/x-protobuf"


def _otlp_resp(desc: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {
        "description": desc,
        "content": {
            "application/json": {"schema": schema},
            OTLP_PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
        },
    }
    if headers:
        r["headers"] = headers
    return r


def _otlp_op(s: Settings) -> dict[str, Any]:
    """``POST /v1/metrics``: OTLP/HTTP metrics (only when ``spec.ingest.otlp`` is configured)."""
    assert s.otlp is not None
    mapping = ", ".join(f"{m} -> {f}" if m != f else m for m, f in s.otlp.metrics)
    key = s.otlp.key_attribute
    status = _otlp_resp("a google.rpc.Status, encoded like the request", RPC_STATUS)
    return {
        "summary": "Ingest OpenTelemetry metrics (OTLP/HTTP)",
        "description": "An ExportMetricsServiceRequest (opentelemetry-proto) as protobuf or OTLP/JSON, "
        "optionally with Content-Encoding: gzip (the body limit applies after inflating). "
        f"Metrics that are features: {mapping}; others are ignored. "
        + (f"Key: the data-point (else resource) attribute {key!r}. " if key else "No key attribute. ")
        + "Gauges and UpDownCounters are levels, Counters a rate per second, histograms "
        f"(explicit and exponential) the interval's observations (at most {s.otlp.max_samples} per key "
        "and export). Keys past the cap go to the stream with key "
        f"{OVERFLOW_KEY!r}.",
        "requestBody": {
            "required": True,
            "content": {
                OTLP_PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object", "description": "OTLP/JSON"}},
            },
        },
        "responses": {
            "200": _otlp_resp(
                "an ExportMetricsServiceResponse: partial_success counts the rejected data points and "
                "names metric and field of the first",
                {
                    "type": "object",
                    "properties": {
                        "partialSuccess": {
                            "type": "object",
                            "properties": {
                                "rejectedDataPoints": {"type": "string", "description": "int64"},
                                "errorMessage": {"type": "string"},
                            },
                        }
                    },
                },
            ),
            "400": status,
            "401": status,
            "413": status,
            "415": status,
            "429": _otlp_resp("queue full: retry after Retry-After", RPC_STATUS, RETRY_AFTER),
            "503": _otlp_resp("shutting down: retry after Retry-After", RPC_STATUS, RETRY_AFTER),
        },
    }


def document(s: Settings) -> dict[str, Any]:
    limits = s.limits
    stateful = (
        "Beyond the schema, the server rejects per sample: ids seen in the last "
        f"{limits.dedup_window} accepted (duplicate), "
        f"ts older than the key's newest minus {limits.allowed_lateness}s (late), "
        f"ts more than {limits.max_future:g}s ahead (bad_ts), "
        "a value of the other type than the feature's first value (wrong_type). "
        f"Keys beyond the first {s.spec.keys.max_keys} distinct ones are not rejected: their samples go "
        f"to the stream with key {OVERFLOW_KEY!r}."
    )
    text_metrics = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "DriftWatch sidecar",
            "version": version(),  # read when served: importlib.metadata is not worth ~50 ms of start
            "description": f"Monitor {s.namespace}/{s.monitor}.",
        },
        "paths": {
            "/v1/samples": {"post": _ingest_op("Ingest samples", "SamplesBody", stateful)},
            "/v1/telemetry": {
                "post": _ingest_op(
                    "Ingest service telemetry",
                    "TelemetryBody",
                    "key = service_id; features latency_ms and payload_kb. " + stateful,
                )
            },
            **({"/v1/metrics": {"post": _otlp_op(s)}} if s.otlp is not None else {}),
            "/v1/status": {
                "get": {
                    "summary": "Phase and every stream's state",
                    "responses": {"200": _resp("status", "Status")},
                }
            },
            "/v1/events": {
                "get": {
                    "summary": "Drift events seen by this pod, newest first",
                    "parameters": [
                        {"name": "feature", "in": "query", "schema": {"type": "string"}},
                        {"name": "key", "in": "query", "schema": {"type": "string"}},
                        {"name": "type", "in": "query", "schema": {"enum": ["DRIFT_START", "DRIFT_END"]}},
                        {
                            "name": "since",
                            "in": "query",
                            "schema": {"type": "string"},
                            "description": "epoch seconds or ISO 8601",
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                        },
                        {
                            "name": "offset",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0, "default": 0},
                        },
                    ],
                    "responses": {
                        "200": _resp("events", "Events"),
                        "400": _resp("a bad query parameter", "Error"),
                    },
                }
            },
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": _resp("alive", "Probe")}}},
            "/readyz": {
                "get": {
                    "summary": "Readiness; status 'degraded' while Redis is unavailable "
                    "(still ready: samples are kept in memory)",
                    "responses": {
                        "200": _resp("accepting samples", "Probe"),
                        "503": _resp("starting or shutting down", "Probe"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (also on the metrics port)",
                    "responses": {"200": {"description": "text exposition format", "content": text_metrics}},
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}
            },
        },
        "components": {
            "schemas": schemas(s),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        **({"security": [{"bearer": []}]} if s.token else {}),
    }

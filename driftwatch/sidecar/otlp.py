"""Ingest path 4: ``POST /v1/metrics``, OTLP/HTTP metrics from the app's OpenTelemetry SDK.

Loaded only when ``spec.ingest.otlp`` is configured (``runtime.py``): protobuf and the generated OTLP
classes cost start time and memory that other sidecars should not pay.

The body is an ``ExportMetricsServiceRequest`` as protobuf (``application/x-protobuf``) or OTLP's
JSON (``application/json``), optionally gzip-compressed (``Content-Encoding: gzip``; aiohttp inflates
it in bounded steps and the body limit applies to the inflated size, so a gzip bomb is a 413 after at
most ``bodyLimit`` bytes). It is decoded with the official ``opentelemetry-proto`` classes, mapped by
``otlp_map`` and handed to ``Ingest`` like every other source. Answers are OTLP's own shapes, encoded
like the request: 200 with an ``ExportMetricsServiceResponse`` (``partial_success`` counts the
rejected data points and names metric and field of the first ones); 400/401/413/415 and the
retryable 429/503 (with ``Retry-After``) with a ``google.rpc.Status``. Never a 5xx.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb

from driftwatch.sidecar.decode import BodyError, Rejections, loads, payload_error
from driftwatch.sidecar.ingest import Ingest, ShuttingDown
from driftwatch.sidecar.otlp_map import Mapped, OtlpConverter
from driftwatch.sidecar.queue import QueueFull
from driftwatch.vocab.spec import OtlpSpec

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: protobuf messages nested deeper than this (AnyValue in AnyValue ...) are refused (upb's own limit)
MAX_NESTING = 100
#: messages of the first rejections named in ``partial_success.error_message``
MESSAGE_EXAMPLES = 5


class OtlpReceiver:
    """The ``POST /v1/metrics`` handler: transport (content type, size, auth, shutdown) here, mapping in
    ``OtlpConverter``, validation and admission in ``Ingest``."""

    def __init__(
        self,
        ingest: Ingest,
        cfg: OtlpSpec,
        body_limit: int,
        authorized: Callable[[web.Request], bool],
    ) -> None:
        self.ingest = ingest
        self.converter = OtlpConverter(cfg, since_ns=time.time_ns())
        self.body_limit = body_limit
        self.authorized = authorized
        self.latency = ingest.counters.latency

    async def post_metrics(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        proto = ctype != JSON  # answers: protobuf unless the request is JSON
        if not self.authorized(request):
            return _status(
                401,
                code_pb2.UNAUTHENTICATED,
                "Authorization: missing or wrong bearer token",
                proto,
                {"WWW-Authenticate": 'Bearer realm="driftwatch"'},
            )
        ingest = self.ingest
        if not ingest.accepting:
            return _status(503, code_pb2.UNAVAILABLE, "shutting down", proto, {"Retry-After": "1"})
        if ctype not in (PROTOBUF, JSON):
            ingest.reject_body("invalid_shape")
            return _status(
                415,
                code_pb2.INVALID_ARGUMENT,
                f"Content-Type: must be {PROTOBUF} or {JSON}, got {ctype or 'none'!r}",
                proto,
            )
        cl = request.content_length
        if cl is not None and cl > self.body_limit:
            ingest.reject_body("body_too_large")
            return _too_large(f"body: {cl} bytes is over the limit of {self.body_limit} bytes", proto)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            ingest.reject_body("body_too_large")
            return _too_large(f"body: over the limit of {self.body_limit} bytes (after decompression)", proto)
        except RequestPayloadError as e:  # a body that does not inflate (Content-Encoding says gzip)
            ingest.reject_body("invalid_shape")
            return _status(400, code_pb2.INVALID_ARGUMENT, f"body: {payload_error(e)}", proto)
        try:
            message = decode(body, proto)
        except BodyError as e:
            ingest.reject_body(e.reason)
            return _status(400, code_pb2.INVALID_ARGUMENT, e.message, proto)
        mapped = await _stepwise(self.converter.convert_steps(message))
        rejected = Rejections(limit=len(mapped.samples) + len(mapped.problems))
        for p in mapped.problems:
            rejected.append({"index": -1, "error": p.error, "reason": p.reason})
        try:
            out = await ingest.take(mapped.samples, time.time(), rejected)
        except ShuttingDown:
            return _status(503, code_pb2.UNAVAILABLE, "shutting down", proto, {"Retry-After": "1"})
        if out.full is not None:
            return _queue_full(out.full, proto)
        self.converter.commit(mapped)
        self.latency.observe(time.perf_counter() - t0)
        return _message(200, answer(mapped, rejected), proto)


def decode(body: bytes, proto: bool) -> Any:
    """The request as an ``ExportMetricsServiceRequest``; BodyError (reason ``invalid_json`` for JSON,
    ``invalid_shape`` for protobuf) naming the problem."""
    request = pb.ExportMetricsServiceRequest()
    if proto:
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as e:
            raise BodyError(
                f"protobuf: not an ExportMetricsServiceRequest ({e or 'malformed'}; messages nest at most "
                f"{MAX_NESTING} deep)",
                "invalid_shape",
            ) from None
        return request
    doc = loads(body)  # BodyError: not JSON, or nested deeper than 1024
    if type(doc) is not dict:
        raise BodyError("body must be a JSON object (ExportMetricsServiceRequest)", "invalid_shape")
    _drop_exemplars(doc)
    try:
        json_format.ParseDict(doc, request, ignore_unknown_fields=True, max_recursion_depth=MAX_NESTING)
    except (json_format.ParseError, RecursionError, ValueError, TypeError, AttributeError) as e:
        raise BodyError(f"OTLP JSON: {str(e)[:300] or 'malformed'}", "invalid_shape") from None
    return request


def _drop_exemplars(doc: dict[str, Any]) -> None:
    """Exemplars are of no use here, and OTLP/JSON writes their trace and span ids in hex where
    protobuf's JSON mapping expects base64: drop them before parsing rather than refuse the body."""
    for rm in _dicts(doc.get("resourceMetrics", doc.get("resource_metrics"))):
        for sm in _dicts(rm.get("scopeMetrics", rm.get("scope_metrics"))):
            for m in _dicts(sm.get("metrics")):
                for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "exponential_histogram"):
                    data = m.get(kind)
                    if type(data) is dict:
                        for p in _dicts(data.get("dataPoints", data.get("data_points"))):
                            p.pop("exemplars", None)


def _dicts(v: Any) -> list[dict[str, Any]]:
    return [x for x in v if type(x) is dict] if type(v) is list else []


def answer(mapped: Mapped, rejected: Rejections) -> Message:
    """The 200 answer: empty when every data point was taken, else ``partial_success`` with the
    number of data points rejected and the first few messages (each naming metric and field)."""
    response = pb.ExportMetricsServiceResponse()
    if not rejected:
        return response
    messages: list[str] = []
    points: set[int] = set()  # samples rejected, by position; each stands for its data points
    refused = 0
    for r in rejected:
        i = r["index"]
        if i < 0:
            refused += 1
            text = r["error"]
        else:
            if i in points:
                continue
            points.add(i)
            where, _ = mapped.origins[i]
            text = f"{where}: {r['error']}"
        if len(messages) < MESSAGE_EXAMPLES:
            messages.append(f"{text} ({r['reason']})")
    n = refused + sum(mapped.origins[i][1] for i in points)
    more = n - len(messages)
    tail = f"; and {more} more" if more > 0 and len(messages) == MESSAGE_EXAMPLES else ""
    response.partial_success.rejected_data_points = n
    response.partial_success.error_message = "; ".join(messages) + tail
    return response


async def _stepwise(steps: Any) -> Mapped:
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: Mapped = done.value
            return result
        await asyncio.sleep(0)


def _message(status: int, msg: Message, proto: bool, headers: dict[str, str] | None = None) -> web.Response:
    if proto:
        return web.Response(
            body=msg.SerializeToString(), status=status, content_type=PROTOBUF, headers=headers
        )
    doc = json_format.MessageToDict(msg)
    return web.Response(body=orjson.dumps(doc), status=status, content_type=JSON, headers=headers)


def _status(
    status: int, code: int, message: str, proto: bool, headers: dict[str, str] | None = None
) -> web.Response:
    return _message(status, status_pb2.Status(code=code, message=message), proto, headers)


def _too_large(message: str, proto: bool) -> web.Response:
    return _status(413, code_pb2.RESOURCE_EXHAUSTED, message, proto)


def _queue_full(e: QueueFull, proto: bool) -> web.Response:
    retry = str(int(e.retry_after + 0.999))
    message = f"queue full ({e.waiting} samples waiting); retry later"
    return _status(429, code_pb2.RESOURCE_EXHAUSTED, message, proto, {"Retry-After": retry})

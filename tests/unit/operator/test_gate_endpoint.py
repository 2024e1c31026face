"""The operator's HTTP gate on a real port: GET as Argo's ``web`` provider asks, POST as Flagger's
webhooks send it (a JSON body naming the canary), shadow mode, and bad bodies answered 400."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from typing import Any

import aiohttp

from driftwatch.operator.cache import MonitorCache
from driftwatch.operator.endpoints import EndpointServer
from driftwatch.operator.options import OperatorOptions

#: what Flagger POSTs to a webhook (flagger.app/v1beta1 CanaryWebhookPayload: name, namespace, phase,
#: checksum, metadata -- the webhook's own key/value pairs)
FLAGGER_BODY = {
    "name": "web",
    "namespace": "shop",
    "phase": "Progressing",
    "checksum": "6f7c9b",
    "metadata": {"type": "confirm-promotion"},
}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cache(verdict: str, mode: str = "enforce") -> MonitorCache:
    cache = MonitorCache()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "metadata": {"name": "web", "namespace": "shop", "uid": "u", "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "gate": {"compare": "stable-pods", "mode": mode},
        },
        "status": {
            "observedGeneration": 1,
            "phase": "Stable",
            "verdict": "Pass" if mode == "shadow" else verdict,
            "lastUpdate": now,
            "gate": {"compare": "stable-pods", "mode": mode, "verdict": verdict, "message": "why"},
        },
    }
    cache.upsert(body, OperatorOptions())
    return cache


async def _ask(cache: MonitorCache, requests: list[tuple[str, str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    port = _port()
    server = EndpointServer(cache, "127.0.0.1", port, max_age=60, ready=lambda: True)
    await server.start()
    out = []
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            for method, path, body in requests:
                kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
                async with session.request(method, path, **(kwargs if body is not None else {})) as r:
                    out.append((r.status, await r.json()))
    finally:
        await server.stop()
    return out


def test_get_and_post_answer_alike() -> None:
    answers = asyncio.run(
        _ask(
            _cache("Fail"),
            [
                ("GET", "/v1/gate/shop/web", None),
                ("POST", "/v1/gate/shop/web", FLAGGER_BODY),
                ("POST", "/v1/gate/shop/web", None),  # no body at all
                ("POST", "/v1/gate", FLAGGER_BODY),  # the body names the canary = the monitor
                ("POST", "/v1/gate", {**FLAGGER_BODY, "name": "web-canary", "metadata": {"monitor": "web"}}),
                ("GET", "/v1/gate/shop/web?always200=true", None),
            ],
        )
    )
    assert [code for code, _ in answers] == [409, 409, 409, 409, 409, 200]
    for _, body in answers:
        assert body["verdict"] == "Fail"
        assert body["monitor"] == "shop/web"
        gate = {"compare": "stable-pods", "mode": "enforce", "verdict": "Fail", "message": "why"}
        assert body["gate"] == gate


def test_fail_only_answers_non_2xx_on_fail_alone() -> None:
    """``?failOnly=true`` is for Flagger's ``rollout`` webhook, where every non-2xx is a failed check
    towards rollback: Inconclusive (a canary still gathering samples) must pass the check, Fail not."""
    asked = [("POST", "/v1/gate?failOnly=true", FLAGGER_BODY), ("POST", "/v1/gate", FLAGGER_BODY)]
    answers = {v: asyncio.run(_ask(_cache(v), asked)) for v in ("Pass", "Inconclusive", "Fail")}
    codes = {v: [code for code, _ in got] for v, got in answers.items()}
    assert codes == {"Pass": [200, 200], "Inconclusive": [200, 503], "Fail": [409, 409]}
    assert {body["verdict"] for _, body in answers["Inconclusive"]} == {"Inconclusive"}  # still said
    [(code, body)] = asyncio.run(
        _ask(_cache("Fail"), [("POST", "/v1/gate?failOnly=true", {**FLAGGER_BODY, "name": "nope"})])
    )
    assert (code, body["reason"]) == (404, "no such DriftMonitor")  # a wrong name never passes


def test_shadow_mode_passes_and_shows_the_computed_verdict() -> None:
    [(code, body)] = asyncio.run(_ask(_cache("Fail", mode="shadow"), [("POST", "/v1/gate", FLAGGER_BODY)]))
    assert code == 200
    assert body["verdict"] == "Pass"
    assert body["gate"]["verdict"] == "Fail"


def test_bad_bodies_are_400_naming_the_field() -> None:
    answers = asyncio.run(
        _ask(
            _cache("Pass"),
            [
                ("POST", "/v1/gate", b"{not json"),
                ("POST", "/v1/gate", {"name": "web"}),
                ("POST", "/v1/gate/shop/web", ["a list"]),
                ("POST", "/v1/gate", {"namespace": "shop", "name": "nope"}),
            ],
        )
    )
    assert [code for code, _ in answers] == [400, 400, 400, 404]
    assert answers[0][1]["error"].startswith("body: not JSON")
    assert answers[1][1]["error"].startswith("namespace: required")
    assert answers[2][1]["error"] == "body: must be a JSON object, got list"
    assert answers[3][1]["reason"] == "no such DriftMonitor"

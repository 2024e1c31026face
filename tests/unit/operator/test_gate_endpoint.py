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


def _cache(
    verdict: str, mode: str = "enforce", compare: str = "stable-pods", about: str | None = None
) -> MonitorCache:
    """A monitor whose status holds ``verdict``; ``about``: the canary hash it judged."""
    cache = MonitorCache()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    gate: dict[str, Any] = {"compare": compare, "mode": mode, "verdict": verdict, "message": "why"}
    if about is not None:
        gate["canaryHash"] = about
    body = {
        "metadata": {"name": "web", "namespace": "shop", "uid": "u", "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "gate": {"compare": compare, "mode": mode},
        },
        "status": {
            "observedGeneration": 1,
            "phase": "Stable",
            "verdict": "Pass" if mode == "shadow" else verdict,
            "lastUpdate": now,
            "gate": gate,
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


def test_a_named_canary_gets_only_a_verdict_about_it() -> None:
    """``?canary=HASH`` (Argo's podTemplateHashValue Latest): the status still holding the previous
    canary's Pass is Inconclusive for the new one -- for GET and for POST, and ``always200`` says it in
    the body (what Argo's jsonPath reads)."""
    answers = asyncio.run(
        _ask(
            _cache("Pass", about="v2"),
            [
                ("GET", "/v1/gate/shop/web?canary=v2", None),
                ("GET", "/v1/gate/shop/web?canary=v3", None),
                ("GET", "/v1/gate/shop/web?always200=true&canary=v3", None),
                ("POST", "/v1/gate/shop/web?canary=v3", FLAGGER_BODY),
                ("POST", "/v1/gate?canary=v3", FLAGGER_BODY),
                ("POST", "/v1/gate?failOnly=true&canary=v3", FLAGGER_BODY),
                ("GET", "/v1/gate/shop/web", None),  # unnamed: as before
            ],
        )
    )
    assert [code for code, _ in answers] == [200, 503, 200, 503, 503, 200, 200]
    assert [b["verdict"] for _, b in answers] == ["Pass", *["Inconclusive"] * 5, "Pass"]
    assert "reason" not in answers[0][1]
    assert answers[0][1]["canary"] == "v2"
    assert answers[0][1]["gate"]["canaryHash"] == "v2"
    for _, body in answers[1:6]:
        assert body["reason"] == "the verdict is about canary pods v2, not v3 (not judged yet)"
        assert body["canary"] == "v3"
        assert body["gate"]["verdict"] == "Pass"  # what the status says, for whoever reads it


def test_a_post_body_naming_the_canary_wins_over_the_query() -> None:
    """Flagger's payload carries no pod template hash (its ``checksum`` hashes Flagger's own status);
    a body that does -- ``metadata.canary`` -- is taken before ``?canary=``."""
    named = {**FLAGGER_BODY, "metadata": {"monitor": "web", "canary": "v3"}}
    answers = asyncio.run(
        _ask(
            _cache("Fail", about="v2"),
            [
                ("POST", "/v1/gate?canary=v2", named),
                ("POST", "/v1/gate/shop/web?canary=v2", named),
                ("POST", "/v1/gate?canary=v2", FLAGGER_BODY),
            ],
        )
    )
    assert [(code, b["verdict"], b.get("canary")) for code, b in answers] == [
        (503, "Inconclusive", "v3"),
        (503, "Inconclusive", "v3"),
        (409, "Fail", "v2"),
    ]


def test_baseline_verdicts_ignore_the_canary_and_shadow_still_passes() -> None:
    [(code, body)] = asyncio.run(
        _ask(_cache("Fail", compare="baseline"), [("GET", "/v1/gate/shop/web?canary=v3", None)])
    )
    assert (code, body["verdict"], "reason" in body) == (409, "Fail", False)
    [(code, body)] = asyncio.run(
        _ask(_cache("Fail", mode="shadow", about="v2"), [("GET", "/v1/gate/shop/web?canary=v3", None)])
    )
    assert (code, body["verdict"]) == (200, "Pass")
    assert body["reason"].startswith("shadow mode (the gate passes): the verdict is about canary pods v2")


def test_a_bad_canary_is_400_naming_the_field() -> None:
    answers = asyncio.run(
        _ask(
            _cache("Pass", about="v2"),
            [
                ("GET", "/v1/gate/shop/web?canary=", None),
                ("GET", "/v1/gate/shop/web?canary=v2&canary=v3", None),
                ("GET", "/v1/gate/shop/web?canary=v2%2Fx", None),
                ("POST", "/v1/gate", {**FLAGGER_BODY, "metadata": {"canary": 3}}),
                ("POST", "/v1/gate", {**FLAGGER_BODY, "metadata": {"canary": ""}}),
            ],
        )
    )
    assert [code for code, _ in answers] == [400] * 5
    errors = [b["error"] for _, b in answers]
    assert errors[0].startswith("canary: must be a pod template hash")
    assert errors[1] == "canary: given more than once"
    assert errors[2].startswith("canary: must be a pod template hash")
    assert errors[3] == "metadata.canary: must be a string (a pod template hash), got int"
    assert errors[4].startswith("metadata.canary: must be a pod template hash")
    assert {b["verdict"] for _, b in answers} == {"Inconclusive"}

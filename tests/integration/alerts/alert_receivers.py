"""Real receivers on loopback for the alert tests: an aiohttp HTTP server that records what it gets
(and fails on demand), and the handler and authenticator of the aiosmtpd server in conftest.py."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SMTP_USER, SMTP_PASSWORD = "alerts-bot", "s3cret-smtp-Pa55word"


@dataclass
class HttpReceiver:
    """Records every POST; ``script`` holds the statuses to answer next (then 200)."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(
            {"path": request.path_qs, "headers": dict(request.headers), "json": await request.json()}
        )
        if self.script:
            status, headers = self.script.pop(0)
            return web.Response(status=status, headers=headers, text="no")
        return web.Response(text="ok")

    async def start(self) -> HttpReceiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@dataclass
class SmtpServer:
    host: str
    port: int
    client_tls: ssl.SSLContext
    messages: list[Any]
    handler: Any


class SmtpHandler:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.fail_next: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_next:
            return self.fail_next.pop(0)
        self.messages.append(envelope)
        return "250 OK"


def smtp_authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)

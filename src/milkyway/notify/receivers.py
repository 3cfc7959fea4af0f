"""Local receivers for trying notifications out: an SMTP server that keeps every mail as
an ``.eml`` file in a mailbox directory, and an HTTP receiver for Slack incoming webhooks
and generic webhooks that keeps every post as a ``.json`` file.

Both are real servers on 127.0.0.1 (``make demo`` runs them; the tests send to them).
They keep what they are sent, repeats included: counting distinct ``Message-ID``s or
``Idempotency-Key``s shows what a receiver that de-duplicates would have shown.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session


class _Handler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.count += 1
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        name = f"{time.time_ns()}-{self.count:05d}.eml"
        (self.directory / name).write_bytes(content)
        return "250 Message accepted for delivery"


class MailboxServer:
    """SMTP on 127.0.0.1 writing each mail to ``directory/<ns>-<n>.eml``.

    ``stop()`` then ``start()`` again keeps the port: a mail server down for a while.
    """

    def __init__(self, directory: str | Path, port: int = 0) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port
        self._handler = _Handler(self.directory)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self._handler, hostname="milkyway-mailbox"),
            host="127.0.0.1",
            port=self.port,
            reuse_address=True,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def messages(self) -> list[EmailMessage]:
        """Every mail received, oldest first."""
        found = []
        for path in sorted(self.directory.glob("*.eml")):
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        return found


def text_of(mail: EmailMessage) -> str:
    """The plain-text part of a mail."""
    part = mail.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


class WebhookReceiver:
    """HTTP on 127.0.0.1 keeping every POST (headers and JSON body), answering 200.

    ``fail_with`` makes it answer that status instead (an outage of the receiver).
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory else None
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.received: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _post(self, request: web.Request) -> web.Response:
        if self.fail_with:
            return web.Response(status=self.fail_with, text="unavailable")
        body = await request.read()
        entry = {
            "path": request.path,
            "headers": dict(request.headers),
            "raw": body.decode("utf-8", "replace"),
            "json": json.loads(body) if body else None,
        }
        self.received.append(entry)
        if self.directory:
            name = f"{time.time_ns()}-{len(self.received):05d}.json"
            (self.directory / name).write_text(json.dumps(entry, indent=2))
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

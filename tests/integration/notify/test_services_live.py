"""The services against real servers: SMTP with STARTTLS and authentication (aiosmtpd),
a webhook receiver checking the HMAC signature; credentials come from the Secret and
never appear in an error."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from milkyway.flows.tasks import FatalError, RetryableError
from milkyway.notify.config import parse
from milkyway.notify.receivers import WebhookReceiver
from milkyway.notify.services import SIGNATURE_HEADER, message_id, send
from milkyway.notify.templates import Message

MESSAGE = Message(subject="[milkyway] test", text="hello\n", html="<p>hello</p>")
PASSWORD = "s3cret-pa55"


def _tls_context(tmp: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return context


class _Inbox:
    def __init__(self) -> None:
        self.mails: list[bytes] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(envelope.original_content or envelope.content)
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and data.password == PASSWORD.encode():
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@pytest.fixture
async def tls_smtp(tmp_path: Path) -> AsyncIterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    context = _tls_context(tmp_path)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            inbox,
            hostname="localhost",
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            authenticator=inbox.authenticate,
        ),
        host="127.0.0.1",
        port=0,
    )
    try:
        yield inbox, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def _config(port: int, password: str) -> Any:
    return parse(
        {
            "service.email": f"host: 127.0.0.1\nport: {port}\nstarttls: true\n"
            "insecureSkipVerify: true\nusername: $user\npassword: $pass\n"
            "from: milkyway@example.com\ncc: [audit@example.com]\n",
        },
        {
            "user": base64.b64encode(b"milkyway").decode(),
            "pass": base64.b64encode(password.encode()).decode(),
        },
    )


async def test_mail_goes_over_starttls_with_the_secrets_credentials(
    tls_smtp: tuple[_Inbox, int],
) -> None:
    inbox, port = tls_smtp
    result = await send(_config(port, PASSWORD), "email", ["a@example.com"], MESSAGE, "k1")
    assert result["messageId"] == message_id("k1")
    assert inbox.logins == ["milkyway"]
    assert len(inbox.mails) == 1
    raw = inbox.mails[0].decode()
    assert "Cc: audit@example.com" in raw and f"Message-ID: {message_id('k1')}" in raw
    assert "multipart/alternative" in raw


async def test_a_wrong_password_fails_without_showing_it(tls_smtp: tuple[_Inbox, int]) -> None:
    inbox, port = tls_smtp
    with pytest.raises((FatalError, RetryableError)) as failure:
        await send(_config(port, "wrong-pa55word"), "email", ["a@example.com"], MESSAGE, "k2")
    assert "wrong-pa55word" not in str(failure.value)
    assert inbox.mails == []


async def test_a_server_that_is_not_there_is_retryable() -> None:
    with pytest.raises(RetryableError, match="service 'email'"):
        await send(_config(1, PASSWORD), "email", ["a@example.com"], MESSAGE, "k3")


async def test_a_webhook_is_signed_and_carries_its_idempotency_key() -> None:
    receiver = WebhookReceiver()
    await receiver.start()
    try:
        config = parse(
            {"service.webhook.ops": f"url: {receiver.url}/hook\nsecret: $hmac\n"},
            {"hmac": base64.b64encode(b"shared-key").decode()},
        )
        await send(config, "ops", [], MESSAGE, "ns/app/flow-failed/r1/abc", {"run": "r1"})
        receiver.fail_with = 400
        with pytest.raises(FatalError, match="HTTP 400"):
            await send(config, "ops", [], MESSAGE, "k", {})
        receiver.fail_with = 503
        with pytest.raises(RetryableError, match="HTTP 503"):
            await send(config, "ops", [], MESSAGE, "k", {})
    finally:
        await receiver.stop()
    assert len(receiver.received) == 1
    got = receiver.received[0]
    expected = hmac.new(b"shared-key", got["raw"].encode(), hashlib.sha256).hexdigest()
    assert got["headers"][SIGNATURE_HEADER] == f"sha256={expected}"
    assert got["headers"]["Idempotency-Key"] == "ns/app/flow-failed/r1/abc"
    assert got["json"]["event"] == {"run": "r1"} and got["json"]["subject"] == MESSAGE.subject

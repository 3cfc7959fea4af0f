"""Services that carry a message: email over SMTP, Slack, a generic webhook.

Every send carries the delivery's key so the receiver can drop a repeat: the email's
``Message-ID`` is derived from it, the webhook gets it in ``Idempotency-Key`` (and in the
body, which is HMAC-signed), Slack in the payload's metadata. A failure the next attempt
may not meet (connection refused, timeout, 4xx SMTP, 429 or 5xx HTTP) is
:class:`~milkyway.flows.tasks.RetryableError`; one it will (a rejected address, a 4xx
HTTP answer) is :class:`~milkyway.flows.tasks.FatalError`. Error messages never carry a
credential.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib
import httpx

from milkyway.flows.tasks import FatalError, RetryableError
from milkyway.notify.config import ConfigProblem, NotifyConfig, ServiceConfig
from milkyway.notify.templates import Message
from milkyway.notify.triggers import digest

SIGNATURE_HEADER = "X-Milkyway-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def message_id(key: str) -> str:
    """The stable ``Message-ID`` of the delivery ``key``: every attempt sends the same."""
    return f"<{digest(key, length=32)}@milkyway.notifications>"


def email_message(
    settings: dict[str, Any], recipients: list[str], message: Message, key: str
) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = settings.get("from") or "milkyway@localhost"
    mail["To"] = ", ".join(recipients)
    cc = settings.get("cc") or []
    if isinstance(cc, str):
        cc = [cc]
    if cc:
        mail["Cc"] = ", ".join(cc)
    mail["Message-ID"] = message_id(key)
    mail["Date"] = formatdate(localtime=False)
    mail["X-Milkyway-Delivery"] = key
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    return mail


async def send_email(
    config: NotifyConfig, service: ServiceConfig, recipients: list[str], message: Message, key: str
) -> dict[str, Any]:
    settings = {k: config.resolve(v) for k, v in service.settings.items()}
    if not recipients:
        raise FatalError(f"service {service.name!r}: a mail subscription needs recipients")
    host = settings.get("host")
    if not host:
        raise FatalError(f"service {service.name!r}: host is required")
    mail = email_message(settings, recipients, message, key)
    try:
        await aiosmtplib.send(
            mail,
            hostname=str(host),
            port=int(settings.get("port") or 25),
            username=settings.get("username") or None,
            password=settings.get("password") or None,
            start_tls=bool(settings.get("starttls", False)) or None,
            use_tls=bool(settings.get("tls", False)),
            timeout=float(settings.get("timeout") or 30),
            validate_certs=not bool(settings.get("insecureSkipVerify", False)),
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise FatalError(f"service {service.name!r}: recipients refused: {exc}") from None
    except aiosmtplib.SMTPResponseException as exc:
        text = f"service {service.name!r}: SMTP {exc.code} {exc.message}"
        if 400 <= exc.code < 500:
            raise RetryableError(text) from None
        raise FatalError(text) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise RetryableError(
            f"service {service.name!r}: {host}: {type(exc).__name__}: {exc}"
        ) from None
    return {"messageId": str(mail["Message-ID"]), "to": recipients}


def slack_payload(message: Message, recipients: list[str], key: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "text": message.subject,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": message.subject[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": message.text[:2900]}},
        ],
        "metadata": {"event_type": "milkyway_notification", "event_payload": {"key": key}},
    }
    if recipients:
        payload["channel"] = recipients[0]
    return payload


async def _post(
    service: ServiceConfig, url: str, body: bytes, headers: dict[str, str], seconds: float
) -> int:
    try:
        async with httpx.AsyncClient(timeout=seconds, trust_env=False) as http:
            response = await http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise RetryableError(f"service {service.name!r}: {type(exc).__name__}: {exc}") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryableError(f"service {service.name!r}: HTTP {response.status_code}")
    if response.status_code >= 400:
        raise FatalError(
            f"service {service.name!r}: HTTP {response.status_code}: {response.text[:200]}"
        )
    return response.status_code


async def send_slack(
    config: NotifyConfig, service: ServiceConfig, recipients: list[str], message: Message, key: str
) -> dict[str, Any]:
    url = config.resolve(service.settings.get("url"))
    if not url:
        raise FatalError(f"service {service.name!r}: url is required")
    body = json.dumps(slack_payload(message, recipients, key)).encode()
    headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key}
    code = await _post(
        service, str(url), body, headers, float(service.settings.get("timeout") or 30)
    )
    return {"status": code}


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>`` HMAC of the body, as the receiver recomputes it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def send_webhook(
    config: NotifyConfig,
    service: ServiceConfig,
    recipients: list[str],
    message: Message,
    key: str,
    event: dict[str, Any] | None = None,
) -> dict[str, Any]:
    url = config.resolve(service.settings.get("url"))
    if not url:
        raise FatalError(f"service {service.name!r}: url is required")
    payload = {
        "key": key,
        "subject": message.subject,
        "text": message.text,
        "recipients": recipients,
        "event": event or {},
    }
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key}
    secret = config.resolve(service.settings.get("secret"))
    if secret:
        headers[SIGNATURE_HEADER] = signature(str(secret), body)
    code = await _post(
        service, str(url), body, headers, float(service.settings.get("timeout") or 30)
    )
    return {"status": code}


async def send(
    config: NotifyConfig,
    service_name: str,
    recipients: list[str],
    message: Message,
    key: str,
    event: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Send through the configured service ``service_name``."""
    service = config.services.get(service_name)
    if service is None:
        known = ", ".join(sorted(config.services)) or "none"
        raise FatalError(
            f"no notification service {service_name!r} is configured (known: {known}); "
            "add service.<type>.<name> to the operator's notifications ConfigMap"
        )
    try:
        if service.type == "email":
            return await send_email(config, service, recipients, message, key)
        if service.type == "slack":
            return await send_slack(config, service, recipients, message, key)
        return await send_webhook(config, service, recipients, message, key, event)
    except ConfigProblem as exc:
        raise FatalError(f"service {service_name!r}: {exc}") from None

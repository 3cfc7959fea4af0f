"""What each service puts on the wire: stable ids, HMAC signatures, Slack blocks."""

from __future__ import annotations

import hashlib
import hmac

from milkyway.notify.ratelimit import RateLimiter
from milkyway.notify.services import email_message, message_id, signature, slack_payload
from milkyway.notify.templates import Message

MESSAGE = Message(subject="S", text="T\n", html="<p>T</p>")


def test_every_attempt_of_a_delivery_has_the_same_message_id() -> None:
    assert message_id("ns/app/heartbeat/1/abc") == message_id("ns/app/heartbeat/1/abc")
    assert message_id("ns/app/heartbeat/1/abc") != message_id("ns/app/heartbeat/2/abc")
    mail = email_message(
        {"from": "mw@example.com", "cc": ["audit@example.com"]}, ["a@x", "b@x"], MESSAGE, "k"
    )
    assert mail["Message-ID"] == message_id("k")
    assert mail["To"] == "a@x, b@x" and mail["Cc"] == "audit@example.com"
    assert mail.get_body(preferencelist=("plain",)).get_content() == "T\n"
    assert mail.get_body(preferencelist=("html",)).get_content().strip() == "<p>T</p>"


def test_the_webhook_signature_is_the_hmac_of_the_body() -> None:
    body = b'{"key": "k"}'
    expected = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert signature("secret", body) == f"sha256={expected}"


def test_slack_gets_a_header_and_a_section_block() -> None:
    payload = slack_payload(MESSAGE, ["#ops"], "k")
    assert payload["text"] == "S" and payload["channel"] == "#ops"
    assert [b["type"] for b in payload["blocks"]] == ["header", "section"]
    assert payload["metadata"]["event_payload"]["key"] == "k"


def test_the_rate_limit_is_per_subscription() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.delay("a", 2, 10.0) for _ in range(2)] == [0.0, 0.0]
    assert limiter.delay("a", 2, 10.0) == 5.0
    assert limiter.delay("b", 2, 10.0) == 0.0
    now[0] = 5.0
    assert limiter.delay("a", 2, 10.0) == 0.0

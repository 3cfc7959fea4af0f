"""Subscriptions from annotations and config; the config's parsing and its refusals."""

from __future__ import annotations

import base64

import pytest

from milkyway.notify.config import ConfigProblem, parse
from milkyway.notify.subscriptions import PREFIX, for_trigger, from_annotations
from milkyway.notify.triggers import Event


def test_annotations_subscribe_recipients_to_a_trigger_through_a_service() -> None:
    found, errors = from_annotations(
        {
            f"{PREFIX}health-degraded.email": "a@example.com; b@example.com",
            f"{PREFIX}task-failed.slack": "#ops",
            f"{PREFIX}flow-failed.ops-hook": "",
            "unrelated": "x",
        },
        "Application",
    )
    assert errors == []
    by_trigger = {s.trigger: (s.service, s.recipients) for s in found}
    assert by_trigger == {
        "health-degraded": ("email", ("a@example.com", "b@example.com")),
        "task-failed": ("slack", ("#ops",)),
        "flow-failed": ("ops-hook", ()),
    }


@pytest.mark.parametrize(
    "key",
    [f"{PREFIX}health-exploded.email", f"{PREFIX}heartbeat", f"{PREFIX}heartbeat.E_mail"],
)
def test_a_malformed_annotation_is_an_error_naming_it_and_the_rest_still_count(key: str) -> None:
    found, errors = from_annotations({key: "x", f"{PREFIX}heartbeat.email": "a@x"}, "Namespace")
    assert len(found) == 1
    assert len(errors) == 1 and repr(key) in errors[0] and "Namespace annotation" in errors[0]


def test_the_same_subscription_declared_twice_counts_once() -> None:
    a, _ = from_annotations({f"{PREFIX}heartbeat.email": "a@x"}, "Application")
    b, _ = from_annotations({f"{PREFIX}heartbeat.email": "a@x"}, "Namespace")
    assert len(for_trigger([*a, *b], "heartbeat")) == 1


def test_the_config_reads_services_templates_defaults_context_and_rate() -> None:
    config = parse(
        {
            "service.email": "host: smtp\nport: 587\nstarttls: true\npassword: $smtp-password\n",
            "service.webhook.ops": "url: https://ops\nsecret: $hmac\n",
            "template.heartbeat": "subject: hi {{ namespace }}\n",
            "subscriptions": "- triggers: [task-failed, flow-failed]\n  service: email\n"
            "  recipients: [oncall@example.com]\n",
            "context": "flowRunUrl: https://mw/{namespace}/{run}\n",
            "rateLimit": "5/10",
        },
        {
            "smtp-password": base64.b64encode(b"hunter2").decode(),
            "hmac": base64.b64encode(b"k").decode(),
        },
    )
    assert config.problems == ()
    assert config.services["email"].type == "email"
    assert config.services["ops"].type == "webhook"
    assert config.resolve("$smtp-password") == "hunter2"
    assert [s.trigger for s in config.subscriptions] == ["task-failed", "flow-failed"]
    assert config.link("ns", "r1") == "https://mw/ns/r1"
    assert config.rate == (5, 10.0)
    assert "hunter2" not in repr(config)


def test_a_bad_config_entry_is_a_problem_and_the_rest_still_works() -> None:
    config = parse(
        {
            "service.pager": "url: x\n",
            "template.nope": "subject: x\n",
            "subscriptions": "- triggers: [bogus]\n  service: email\n",
            "rateLimit": "lots",
            "service.email": "host: smtp\n",
        },
        None,
    )
    assert set(config.services) == {"email"}
    text = "\n".join(config.problems)
    assert "'service.pager'" in text and "'template.nope'" in text
    assert "subscriptions[0]" in text and "rateLimit 'lots'" in text


def test_a_missing_secret_key_names_the_key_and_the_fix() -> None:
    config = parse({"service.slack": "url: $slack-url\n"}, {})
    with pytest.raises(ConfigProblem, match=r"'slack-url'.*add it to the Secret"):
        config.resolve("$slack-url")


def test_an_event_of_an_unknown_trigger_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown trigger 'health-exploded'"):
        Event("health-exploded", "ns", "app", "1")
    assert Event("heartbeat", "ns", "app", "17").key == "ns/app/heartbeat/17"

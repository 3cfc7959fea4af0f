"""Who is told what: subscriptions from annotations and from the operator's config.

An annotation ``notifications.milkyway.ebay.com/subscribe.<trigger>.<service>:
<recipients>`` on an Application, or on its Namespace (then for every Application in
it), subscribes the recipients (``;`` or ``,`` separated; none for a webhook) to the
trigger through the named service. The operator's config adds cluster-wide defaults.
A malformed annotation is an error the caller reports; the others still count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from milkyway.notify.triggers import TRIGGERS, digest

PREFIX = "notifications.milkyway.ebay.com/subscribe."
_SERVICE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Subscription:
    trigger: str
    service: str
    recipients: tuple[str, ...]
    source: str
    """Where it was declared: ``Application``, ``Namespace`` or ``config``."""

    @property
    def id(self) -> str:
        """Stable identity (rate limits and delivery names are per subscription)."""
        return digest(self.trigger, self.service, ",".join(self.recipients), length=10)


def split_recipients(value: str) -> tuple[str, ...]:
    return tuple(r.strip() for r in re.split(r"[;,]", value) if r.strip())


def from_annotations(
    annotations: Mapping[str, str] | None, source: str
) -> tuple[list[Subscription], list[str]]:
    """Subscriptions in ``annotations`` and a message per malformed one."""
    found: list[Subscription] = []
    errors: list[str] = []
    for key, value in sorted((annotations or {}).items()):
        if not key.startswith(PREFIX):
            continue
        rest = key[len(PREFIX) :]
        trigger, dot, service = rest.partition(".")
        if not dot or trigger not in TRIGGERS or not _SERVICE.match(service):
            errors.append(
                f"{source} annotation {key!r}: expected "
                f"{PREFIX}<trigger>.<service> with trigger one of {', '.join(TRIGGERS)} "
                "and a service name of lower-case letters, digits and '-'"
            )
            continue
        found.append(Subscription(trigger, service, split_recipients(value or ""), source))
    return found, errors


def from_config(entries: Iterable[Mapping[str, Any]]) -> tuple[list[Subscription], list[str]]:
    """Default subscriptions: ``[{triggers: [...], service: ..., recipients: [...]}]``."""
    found: list[Subscription] = []
    errors: list[str] = []
    for i, entry in enumerate(entries):
        triggers = entry.get("triggers") or []
        service = entry.get("service")
        recipients = entry.get("recipients") or []
        if isinstance(recipients, str):
            recipients = list(split_recipients(recipients))
        bad = [t for t in triggers if t not in TRIGGERS]
        if not isinstance(service, str) or not _SERVICE.match(service) or bad or not triggers:
            errors.append(
                f"config subscriptions[{i}]: needs triggers (from {', '.join(TRIGGERS)}) "
                f"and a service name; got triggers={triggers!r} service={service!r}"
            )
            continue
        for trigger in triggers:
            found.append(Subscription(trigger, service, tuple(recipients), "config"))
    return found, errors


def for_trigger(subscriptions: Iterable[Subscription], trigger: str) -> list[Subscription]:
    """The subscriptions to ``trigger``, each once (the same one declared twice counts once)."""
    seen: dict[str, Subscription] = {}
    for sub in subscriptions:
        if sub.trigger == trigger:
            seen.setdefault(sub.id, sub)
    return list(seen.values())

"""The triggers and the event that fires one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

TRIGGERS: tuple[str, ...] = (
    "health-degraded",
    "health-unhealthy",
    "health-recovered",
    "flow-failed",
    "task-failed",
    "flow-succeeded",
    "approval-requested",
    "approval-decided",
    "heartbeat",
)


@dataclass(frozen=True)
class Event:
    """Something subscribers may be told about.

    ``once_per`` identifies the occurrence: every event with the same trigger, namespace,
    Application and ``once_per`` is one event, however often it is seen (a task failing
    on its 3 retries, an operator restarted and replaying the flow runs), and is sent
    once per subscription.
    """

    trigger: str
    namespace: str
    application: str
    once_per: str
    vars: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger {self.trigger!r}; known: {', '.join(TRIGGERS)}")

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.application}/{self.trigger}/{self.once_per}"

    def template_vars(self) -> dict[str, Any]:
        return {
            **self.vars,
            "trigger": self.trigger,
            "namespace": self.namespace,
            "application": self.application,
        }


def digest(*parts: str, length: int = 16) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:length]

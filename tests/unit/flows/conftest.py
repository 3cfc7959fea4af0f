"""A deterministic driver of the pure core, shared by the flow unit tests.

It plays the executor's part without I/O: it remembers which attempts are in flight
(from RunTask/CancelTask commands), the next wake-up time (from Wake), and checks
invariants after every transition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from milkyway.flows import events as ev
from milkyway.flows.core import Machine, RunInfo
from milkyway.model.flow import FlowRunStatus, FlowSpec


@dataclass
class CoreDriver:
    """Feeds events to a Machine and tracks what a real executor would be running."""

    machine: Machine
    status: FlowRunStatus
    now: float = 0.0
    running: dict[str, int] = field(default_factory=dict)
    wake: float | None = None
    started: list[tuple[float, str, int]] = field(default_factory=list)
    cancelled_at: float | None = None
    commands: list[ev.Command] = field(default_factory=list)
    notices: list[ev.Notice] = field(default_factory=list)

    @classmethod
    def for_flows(
        cls,
        flows: dict[str, FlowSpec],
        params: dict[str, Any] | None = None,
        requested_by: str = "alice",
    ) -> CoreDriver:
        root = next(iter(flows))
        machine = Machine(flows, root, RunInfo("run-1", root, "", requested_by))
        return cls(machine, machine.initial(params or {}))

    def apply(self, event: ev.Event) -> list[ev.Command]:
        self.status, commands = self.machine.apply(self.status, event)
        self.commands = commands
        for command in commands:
            if isinstance(command, ev.RunTask):
                self.running[command.path] = command.attempt
                self.started.append((event.now, command.path, command.attempt))
            elif isinstance(command, ev.CancelTask):
                self.running.pop(command.path, None)
            elif isinstance(command, ev.Wake):
                self.wake = command.at
            elif isinstance(command, ev.Notice):
                self.notices.append(command)
        return commands

    def start(self) -> None:
        self.apply(ev.Start(now=self.now, actor="engine"))

    def succeed(self, path: str, outputs: Any = None, dt: float = 1.0) -> None:
        self.now += dt
        attempt = self.running.pop(path)
        self.apply(ev.TaskSucceeded(now=self.now, path=path, attempt=attempt, outputs=outputs))

    def fail(self, path: str, kind: str = "Retryable", dt: float = 1.0) -> None:
        self.now += dt
        attempt = self.running.pop(path)
        self.apply(
            ev.TaskFailed(now=self.now, path=path, attempt=attempt, kind=kind, message="boom")  # type: ignore[arg-type]
        )

    def tick(self) -> None:
        assert self.wake is not None, "no timer is set"
        self.now = max(self.now, self.wake)
        self.apply(ev.Tick(now=self.now))

    def crash(self) -> None:
        """The engine dies: in-flight attempts are lost; a new engine recovers the run."""
        self.running.clear()
        self.now += 1
        self.apply(ev.Recover(now=self.now, actor="engine-2"))

    def run_all(self, limit: int = 10_000) -> None:
        """Succeed every task and fire every timer until the run is terminal."""
        for _ in range(limit):
            if self.status.phase in ("Succeeded", "Failed", "Cancelled"):
                return
            if self.running:
                self.succeed(sorted(self.running)[0])
            elif self.wake is not None:
                self.tick()
            else:
                raise AssertionError(f"run stuck in {self.status.phase}: nothing running")
        raise AssertionError("run did not finish")


@pytest.fixture(scope="session")
def core_driver() -> type[CoreDriver]:
    return CoreDriver

"""What happens to a run (events, the core's input) and what it asks for (commands, output).

Every event carries the time it happened and who caused it: the core never reads a
clock, so a run replayed from its events always reaches the same state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from milkyway.model.flow import ErrorKind


@dataclass(frozen=True, slots=True)
class Event:
    now: float
    actor: str = ""


@dataclass(frozen=True, slots=True)
class Start(Event):
    """The run is admitted (mutexes held) and begins."""


@dataclass(frozen=True, slots=True)
class Recover(Event):
    """An engine took over the run: attempts it finds running were lost and run again."""


@dataclass(frozen=True, slots=True)
class TaskSucceeded(Event):
    path: str = ""
    attempt: int = 0
    outputs: Any = None


@dataclass(frozen=True, slots=True)
class TaskFailed(Event):
    path: str = ""
    attempt: int = 0
    kind: ErrorKind = "Error"
    message: str = ""


@dataclass(frozen=True, slots=True)
class Heartbeat(Event):
    path: str = ""
    attempt: int = 0
    message: str = ""


@dataclass(frozen=True, slots=True)
class Tick(Event):
    """Time passed: fire every timer due at ``now``."""


@dataclass(frozen=True, slots=True)
class Cancel(Event):
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Pause(Event):
    pass


@dataclass(frozen=True, slots=True)
class Resume(Event):
    pass


@dataclass(frozen=True, slots=True)
class Retry(Event):
    """Run a failed run again from its failed steps; succeeded steps are kept."""


@dataclass(frozen=True, slots=True)
class Decide(Event):
    path: str = ""
    approved: bool = True
    groups: tuple[str, ...] = ()
    reason: str = ""
    proven: bool = False
    """The request carried a valid signature of ``milkyway server``."""


@dataclass(frozen=True, slots=True)
class Command:
    pass


@dataclass(frozen=True, slots=True)
class RunTask(Command):
    path: str
    action: str
    params: dict[str, Any]
    attempt: int


@dataclass(frozen=True, slots=True)
class CancelTask(Command):
    path: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Wake(Command):
    """Deliver a :class:`Tick` at ``at`` (the earliest timer); ``None``: no timer is set."""

    at: float | None


@dataclass(frozen=True, slots=True)
class Notice(Command):
    """A Kubernetes Event to record on the run."""

    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True, slots=True)
class Finished(Command):
    phase: str
    message: str = ""
    outputs: Any = field(default=None)

"""The task authoring API: ``@task("name")``, the task context and typed errors.

A task is an ``async`` function ``(params, ctx) -> outputs`` registered under a name
that flows use as ``action:``. Its params are a pydantic model, validated before the
task runs (a validation error is fatal: retrying cannot fix a bad parameter).

Idempotency contract: the engine runs a task *at least once*. If the engine stops
while an attempt is in flight, a new attempt runs after restart, so every task must be
safe to run again: declare the end state (server-side apply), treat "already done" as
success (a 404 on delete), or derive an idempotency key from ``ctx.idempotency_key``
(stable across attempts of the same step in the same run) for external calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from milkyway.kube.cluster_client import ClusterClient
from milkyway.model.flow import ErrorKind

P = TypeVar("P", bound=BaseModel)
TaskFunction = Callable[[Any, "TaskContext"], Awaitable[Mapping[str, Any] | None]]


class TaskError(Exception):
    """Base of the errors a task raises on purpose; ``kind`` drives the retry policy."""

    kind: ErrorKind = "Error"


class RetryableError(TaskError):
    """A transient failure (a timeout, a 429, a member not ready yet): try again later."""

    kind: ErrorKind = "Retryable"


class FatalError(TaskError):
    """A failure retrying cannot fix (bad input, a forbidden operation)."""

    kind: ErrorKind = "Fatal"


class UnknownTaskError(KeyError):
    pass


class ClusterUnavailable(TaskError):
    """The named cluster is not in the live clients mapping (yet).

    Raised by :meth:`TaskContext.client`; :func:`invoke` turns it into a wait for the
    cluster to be registered, then runs the task again within the same attempt. After
    an operator restart the engine may resume runs before every ``Cluster`` is loaded,
    and a step must not fail for good because its cluster arrived a second late.
    """

    kind: ErrorKind = "Retryable"

    def __init__(self, cluster: str, known: list[str]) -> None:
        self.cluster = cluster
        super().__init__(
            f"unknown cluster {cluster!r}; known clusters: {', '.join(known) or 'none'}"
        )


@dataclass(frozen=True)
class TaskSpec:
    name: str
    params_model: type[BaseModel]
    function: TaskFunction
    description: str = ""


class TaskRegistry:
    """Named tasks; flows are validated against it and the executor looks tasks up in it."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskSpec] = {}

    def register(self, spec: TaskSpec) -> None:
        existing = self._tasks.get(spec.name)
        if existing is not None and existing.function is not spec.function:
            raise ValueError(f"task {spec.name!r} is already registered by {existing.function}")
        self._tasks[spec.name] = spec

    def replace(self, spec: TaskSpec) -> None:
        """Register ``spec`` in place of the task of the same name (a copy of a registry
        binding a generic task to a real service, as the operator does for ``notify``)."""
        self._tasks[spec.name] = spec

    def get(self, name: str) -> TaskSpec:
        try:
            return self._tasks[name]
        except KeyError:
            known = ", ".join(sorted(self._tasks)) or "none"
            raise UnknownTaskError(f"no task named {name!r}; registered tasks: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def task(
        self, name: str, params: type[BaseModel] | None = None
    ) -> Callable[[TaskFunction], TaskFunction]:
        """Decorator registering an async task; ``params`` defaults to the annotation."""

        def decorate(function: TaskFunction) -> TaskFunction:
            model = params or _params_annotation(function)
            self.register(TaskSpec(name, model, function, (function.__doc__ or "").strip()))
            return function

        return decorate

    def copy(self) -> TaskRegistry:
        clone = TaskRegistry()
        clone._tasks = dict(self._tasks)
        return clone


class _NoParams(BaseModel):
    model_config = {"extra": "forbid"}


def _params_annotation(function: TaskFunction) -> type[BaseModel]:
    annotations = getattr(function, "__annotations__", {})
    for key, value in annotations.items():
        if key in ("return", "ctx"):
            continue
        resolved = value
        if isinstance(value, str):
            resolved = function.__globals__.get(value)
        if isinstance(resolved, type) and issubclass(resolved, BaseModel):
            return _NoParams if resolved is BaseModel else resolved
        break
    return _NoParams


REGISTRY = TaskRegistry()
"""The process-wide registry the built-in tasks and ``@task`` register into."""


def task(
    name: str, params: type[BaseModel] | None = None
) -> Callable[[TaskFunction], TaskFunction]:
    """Register an async task in the default registry under ``name``."""
    return REGISTRY.task(name, params)


@dataclass
class TaskContext:
    """What a running task may use; everything else it must not touch.

    ``clients`` maps cluster names to lightkube async clients and is read live (the
    engine's mapping itself, not a copy), so a cluster registered while a task waits
    for it is seen at once; ``idempotency_key`` is the same for every attempt of one
    step (or fan-out member) of one run.
    """

    run_id: str
    step: str
    attempt: int
    clients: Mapping[str, ClusterClient]
    logger: logging.Logger
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    on_heartbeat: Callable[[str], None] | None = None
    cluster_poll: float = 0.5
    """Seconds between looks at ``clients`` while waiting for an unknown cluster."""
    cluster_wait: float | None = None
    """Longest wait for an unknown cluster before a ``Fatal`` error; ``None``: the step's
    own timeouts bound it."""
    management: Any = None
    """The client of the cluster holding the runs (the operator's management cluster),
    for tasks that read what the planner stored there; ``None`` when the engine has none."""

    @property
    def idempotency_key(self) -> str:
        return f"{self.run_id}/{self.step}"

    def client(self, cluster: str | None = None) -> Any:
        """The client of ``cluster``; with one cluster configured, ``None`` selects it."""
        if cluster is None:
            if len(self.clients) == 1:
                return next(iter(self.clients.values()))
            raise FatalError(
                "param cluster is required: several clusters are configured "
                f"({', '.join(sorted(self.clients))})"
            )
        try:
            return self.clients[cluster]
        except KeyError:
            raise ClusterUnavailable(cluster, sorted(self.clients)) from None

    async def wait_for_cluster(self, cluster: str) -> None:
        """Wait until ``cluster`` is in ``clients``, heartbeating.

        The step's ``timeout`` and ``heartbeatTimeout`` bound the attempt (the engine
        cancels it when they expire, as does a cancel request); ``cluster_wait``, if
        set, turns a longer wait into a ``Fatal`` error.
        """
        loop = asyncio.get_running_loop()
        deadline = None if self.cluster_wait is None else loop.time() + self.cluster_wait
        while cluster not in self.clients:
            self.check_cancelled()
            known = ", ".join(sorted(self.clients)) or "none"
            if deadline is not None and loop.time() >= deadline:
                raise FatalError(
                    f"unknown cluster {cluster!r}: not registered within "
                    f"{self.cluster_wait:g}s; known clusters: {known}"
                )
            self.heartbeat(f"waiting for cluster {cluster!r} to be registered (known: {known})")
            await asyncio.sleep(self.cluster_poll)

    def heartbeat(self, message: str = "") -> None:
        """Report progress; it is recorded on the run and keeps ``heartbeatTimeout`` away."""
        if self.on_heartbeat is not None:
            self.on_heartbeat(message)

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise asyncio.CancelledError


async def invoke(
    spec: TaskSpec, params: Mapping[str, Any], ctx: TaskContext
) -> tuple[bool, Any, ErrorKind, str]:
    """Run one attempt: (succeeded, outputs, error kind, message). Never raises but cancel."""
    try:
        parsed = spec.params_model.model_validate(dict(params))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors()
        )
        return False, None, "Fatal", f"invalid params for task {spec.name}: {problems}"
    except Exception as exc:
        return False, None, "Fatal", f"task {spec.name} cannot read its params: {exc}"
    try:
        while True:
            try:
                outputs = await spec.function(parsed, ctx)
                break
            except ClusterUnavailable as exc:
                ctx.logger.info("%s: %s; waiting for it", ctx.idempotency_key, exc)
                await ctx.wait_for_cluster(exc.cluster)
    except TaskError as exc:
        return False, None, exc.kind, str(exc) or type(exc).__name__
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return False, None, "Error", f"{type(exc).__name__}: {exc}"
    return True, dict(outputs or {}), "Error", ""

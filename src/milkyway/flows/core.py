"""The pure core of the workflow engine: ``(spec, run status, event) -> (status, commands)``.

No I/O and no clock: time arrives in events, effects leave as commands, and the status
passed in is never modified (nodes are copied on write, so a transition costs what it
touches, not the size of the run). The executor persists the returned status *before*
it carries out the commands; that ordering is the whole durability contract.

The run is a tree of nodes. A *flow* node (the run itself, or a subflow) runs its
``steps`` as a DAG, then ``onFailure`` if a step failed, then ``finally``. A *group*
node fans a step out over ``forEach`` items in batches, within parallelism and the
disruption budget. *Task* nodes are attempts of a registered task; *approval* nodes
wait for a person. A finished node marks its parent dirty; dirty nodes are advanced
until nothing changes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from milkyway.flows import events as ev
from milkyway.flows.expr import ExpressionError, evaluate, render, truthy
from milkyway.flows.group import plan_batches
from milkyway.flows.retry import backoff_delay
from milkyway.model.flow import (
    TERMINAL_NODE_PHASES,
    Attempt,
    Decision,
    FlowRunStatus,
    FlowSpec,
    GroupStrategy,
    HealthGate,
    NodeStatus,
    RetryPolicy,
    Step,
    step_dependencies,
)

ATTEMPTS_KEPT = 10
"""Attempts kept per node; older ones are compacted into a count to bound the status."""

_DEFAULT_RETRY = RetryPolicy()
_DEFAULT_STRATEGY = GroupStrategy()
_TIMER_KINDS = ("#retry", "#attempt", "#hb", "#step", "#approval", "#pause")
_FAILED = frozenset({"Failed", "Cancelled"})


class InvalidRequest(ValueError):
    """An operation that does not apply to the run in its current state."""


class ApprovalDenied(InvalidRequest):
    """The actor may not decide this approval gate."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What expressions see as ``run``; fixed for the life of a run."""

    id: str
    flow: str
    target: str = ""
    requested_by: str = ""

    def as_vars(self) -> dict[str, str]:
        return {
            "id": self.id,
            "flow": self.flow,
            "target": self.target,
            "requestedBy": self.requested_by,
        }


M = TypeVar("M", bound=BaseModel)


def clone(model: M, **changes: Any) -> M:
    """A shallow copy with ``changes``, about five times cheaper than ``model_copy``.

    Transitions copy every node they touch; pydantic's copy also copies its private
    bookkeeping through ``copy.copy``, which dominated the engine's profile.
    """
    new = model.__class__.__new__(model.__class__)
    values = dict(model.__dict__)
    values.update(changes)
    object.__setattr__(new, "__dict__", values)
    object.__setattr__(
        new, "__pydantic_fields_set__", model.__pydantic_fields_set__ | changes.keys()
    )
    object.__setattr__(new, "__pydantic_extra__", None)
    object.__setattr__(new, "__pydantic_private__", None)
    return new


def child_path(scope: str, section: str, name: str) -> str:
    prefix = f"{scope}/" if scope else ""
    return f"{prefix}{name}" if section == "steps" else f"{prefix}{section}.{name}"


def flow_ref(name: str, version: str) -> str:
    return f"{name}@{version}"


def resolve_ref(snapshot: dict[str, FlowSpec], name: str, version: str | None) -> str:
    """The snapshot key of flow ``name`` (newest version when ``version`` is None)."""
    if version is not None:
        key = flow_ref(name, version)
        if key not in snapshot:
            raise KeyError(f"flow {name!r} version {version!r} is not in the run's snapshot")
        return key
    keys = [k for k in snapshot if k.rsplit("@", 1)[0] == name]
    if not keys:
        raise KeyError(f"flow {name!r} is not in the run's snapshot")
    return max(keys, key=lambda k: version_key(k.rsplit("@", 1)[1]))


def version_key(version: str) -> tuple[Any, ...]:
    """Sort key of flow versions: numeric parts numerically ("10" after "9")."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in version.split("."))


class Machine:
    """The transition function of one run (its snapshot and identity are fixed)."""

    def __init__(self, snapshot: dict[str, FlowSpec], root: str, info: RunInfo) -> None:
        self.snapshot = snapshot
        self.root = root
        self.info = info
        self._run_vars = info.as_vars()
        self._steps: dict[tuple[str, str, str], Step] = {}
        self._deps: dict[tuple[str, str], dict[str, list[str]]] = {}
        for ref, spec in snapshot.items():
            for section in ("steps", "onFailure", "finally"):
                steps = spec.section(section)
                self._deps[(ref, section)] = step_dependencies(steps)
                for step in steps:
                    self._steps[(ref, section, step.name)] = step

    # --- public API -----------------------------------------------------------------

    def initial(self, params: dict[str, Any]) -> FlowRunStatus:
        """The status of a run not yet started: the root node, Pending. The run's params
        are kept once, in ``status.params`` (with defaults once it starts), not again in
        the root node."""
        root = NodeStatus(path="", name=self.root, kind="flow", flow_ref=self.root)
        return FlowRunStatus(
            phase="Pending",
            root=self.root,
            params=params,
            snapshot=self.snapshot,
            nodes={"": root},
        )

    def apply(
        self, status: FlowRunStatus, event: ev.Event
    ) -> tuple[FlowRunStatus, list[ev.Command]]:
        """Apply one event. Raises :class:`InvalidRequest` (status unchanged) if it cannot."""
        tx = _Tx(self, status, event)
        handler = _HANDLERS[type(event)]
        handler(tx, event)
        tx.drain()
        return tx.finish()


class _Tx:
    """One transition: copy-on-write view of the status plus the commands it produces."""

    def __init__(self, machine: Machine, status: FlowRunStatus, event: ev.Event) -> None:
        self.m = machine
        self.now = event.now
        self.actor = event.actor
        self.status = clone(status)
        self.nodes = dict(status.nodes)
        self.status.nodes = self.nodes
        self.timers = dict(status.timers)
        self.status.timers = self.timers
        self.timers_changed = False
        self.owned: set[str] = set()
        self.commands: list[ev.Command] = []
        self.dirty: deque[str] = deque()
        self.dirty_set: set[str] = set()

    # --- node access ------------------------------------------------------------------

    def get(self, path: str) -> NodeStatus:
        return self.nodes[path]

    def edit(self, path: str) -> NodeStatus:
        if path in self.owned:
            return self.nodes[path]
        node = self.nodes[path]
        copy = clone(node, attempts=list(node.attempts))
        self.nodes[path] = copy
        self.owned.add(path)
        return copy

    def put(self, node: NodeStatus) -> None:
        self.nodes[node.path] = node
        self.owned.add(node.path)

    def mark(self, path: str) -> None:
        if path not in self.dirty_set:
            self.dirty_set.add(path)
            self.dirty.append(path)

    def set_timer(self, key: str, at: float) -> None:
        self.timers[key] = at
        self.timers_changed = True

    def clear_timers(self, path: str) -> None:
        for kind in _TIMER_KINDS:
            if self.timers.pop(path + kind, None) is not None:
                self.timers_changed = True

    # --- spec lookups -----------------------------------------------------------------

    def step_of(self, node: NodeStatus) -> Step:
        if node.role != "step":
            return self.step_of(self.get(node.parent or ""))
        scope = self.get(node.parent or "")
        return self.m._steps[(scope.flow_ref or "", node.section, node.name)]

    def scope_of(self, node: NodeStatus) -> NodeStatus:
        """The flow node whose params and steps a node's expressions see."""
        parent = self.get(node.parent or "")
        return parent if parent.kind == "flow" else self.get(parent.parent or "")

    def variables(self, scope: NodeStatus, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        spec = self.m.snapshot[scope.flow_ref or ""]
        steps: dict[str, Any] = {}
        for section in ("steps", "onFailure", "finally"):
            for step in spec.section(section):
                node = self.nodes.get(child_path(scope.path, section, step.name))
                if node is not None:
                    steps[step.name] = {"outputs": node.outputs, "phase": node.phase}
        if scope.params is not None:
            params = scope.params
        else:
            params = self.status.params if not scope.path else {}
        result = {"params": params, "steps": steps, "run": self.m._run_vars}
        if extra:
            result.update(extra)
        return result

    def in_finally(self, node: NodeStatus) -> bool:
        current: NodeStatus | None = node
        while current is not None:
            if current.section == "finally":
                return True
            current = self.nodes.get(current.parent) if current.parent is not None else None
        return False

    def in_handler(self, node: NodeStatus) -> bool:
        current: NodeStatus | None = node
        while current is not None:
            if current.section in ("onFailure", "finally"):
                return True
            current = self.nodes.get(current.parent) if current.parent is not None else None
        return False

    def stopping(self) -> bool:
        return self.status.cancelled or self.status.timed_out

    # --- transitions ------------------------------------------------------------------

    def finish(self) -> tuple[FlowRunStatus, list[ev.Command]]:
        status = self.status
        status.now = self.now
        status.seq += 1
        root = self.nodes[""]
        if root.phase in ("Succeeded", "Failed", "Cancelled"):
            status.phase = root.phase
        elif root.phase == "Pending":
            status.phase = "Pending"
        else:
            status.phase = "Paused" if status.paused else "Running"
        if self.timers_changed:
            self.commands.append(ev.Wake(min(self.timers.values()) if self.timers else None))
        return status, self.commands

    def drain(self) -> None:
        while self.dirty:
            path = self.dirty.popleft()
            self.dirty_set.discard(path)
            node = self.nodes.get(path)
            if node is None or node.phase in TERMINAL_NODE_PHASES or node.phase == "Pending":
                continue
            if node.kind == "flow":
                self.advance_flow(path)
            elif node.kind == "group":
                self.advance_group(path)

    def new_node(
        self, path: str, name: str, step: Step, parent: str, section: str, role: str = "step"
    ) -> NodeStatus:
        if role == "step" and step.for_each is not None:
            kind = "group"
        elif step.flow is not None:
            kind = "flow"
        elif step.approval is not None:
            kind = "approval"
        else:
            kind = "task"
        previous = self.nodes.get(path)
        node = NodeStatus(
            path=path,
            name=name,
            kind=kind,  # type: ignore[arg-type]
            parent=parent,
            role=role,  # type: ignore[arg-type]
            section=section,
            action=step.action,
        )
        if previous is not None:
            node.attempts = list(previous.attempts)
            node.compacted = previous.compacted
        self.put(node)
        return node

    def complete(
        self, path: str, phase: str, message: str = "", outputs: Any = None, quiet: bool = False
    ) -> None:
        node = self.edit(path)
        node.phase = phase  # type: ignore[assignment]
        node.finished_at = self.now
        node.retry_due = False
        if message or phase == "Succeeded":
            node.message = message
        if outputs is not None:
            node.outputs = outputs
        self.clear_timers(path)
        if phase == "Succeeded" and path and node.kind in ("task", "flow"):
            self.compact(node)
        if not quiet:
            self.child_finished(node)

    def compact(self, done: NodeStatus) -> None:
        """Forget what a step that succeeded no longer needs, so a run's status grows with
        what went wrong, not with the size of what it changed: its rendered params (a
        retry never runs a succeeded step again), a group member's ``item`` (its
        ``index`` in the group's items stays), and, below a group member's subflow (one
        per member: what grows with the group), the nodes that succeeded at their first
        attempt. Nodes with failed attempts, approvals and their ancestors stay, for the
        record and the events they raise; other subflows keep their steps."""
        done.params = None
        if done.role == "member":
            done.item = None
        if done.kind != "flow" or done.role != "member":
            return
        prefix = done.path + "/"
        below = [p for p in self.nodes if p.startswith(prefix)]
        keep: set[str] = set()
        for path in below:
            node = self.nodes[path]
            if (
                node.kind == "approval"
                or node.failures
                or node.compacted
                or len(node.attempts) > 1
                or node.phase not in ("Succeeded", "Skipped")
            ):
                current: str | None = path
                while current is not None and current.startswith(prefix):
                    keep.add(current)
                    current = self.nodes[current].parent
        for path in below:
            if path not in keep:
                gone = self.nodes.pop(path)
                self.owned.discard(path)
                if gone.kind in ("task", "approval") and gone.role != "gate":
                    self.status.forgotten += 1

    def child_finished(self, node: NodeStatus) -> None:
        if node.parent is None:
            self.run_finished(node)
            return
        parent = self.get(node.parent)
        if parent.kind == "group":
            group = self.edit(node.parent)
            if node.role == "member":
                group.active -= 1
                if node.phase in _FAILED:
                    group.failed_members += 1
                    group.down += 1
            elif node.role == "gate":
                if node.phase == "Succeeded":
                    group.batch += 1
                    group.next = 0
                    group.stage = "running"
                else:
                    group.stage = "gate-failed"
        elif node.phase in _FAILED and not self.step_of(node).continue_on_error:
            self.edit(node.parent).failed = True
        self.mark(node.parent)

    def run_finished(self, root: NodeStatus) -> None:
        self.status.finished_at = self.now
        self.status.outputs = root.outputs
        if self.timers:
            self.timers.clear()
            self.timers_changed = True
        warning = root.phase != "Succeeded"
        self.commands.append(
            ev.Notice(f"Run{root.phase}", root.message or f"run {root.phase.lower()}", warning)
        )
        self.commands.append(ev.Finished(root.phase, root.message, root.outputs))

    # --- flows ------------------------------------------------------------------------

    def start_flow(self, path: str, ref: str, params: dict[str, Any]) -> None:
        spec = self.m.snapshot[ref]
        try:
            resolved = apply_defaults(spec, params)
        except ValueError as exc:
            self.complete(path, "Failed", str(exc))
            return
        node = self.edit(path)
        node.kind = "flow"
        node.flow_ref = ref
        if path:
            node.params = resolved
        else:
            self.status.params = resolved
            node.params = None
        node.phase = "Running"
        node.started_at = self.now
        node.failed = False
        self.open_section(path, "steps")
        self.mark(path)

    def open_section(self, path: str, section: str) -> None:
        """Create the section's step nodes; in ``steps``, work already done is kept.

        A retried fan-out member runs its subflow again from the failed step: its
        succeeded or skipped steps stay as they are. Handler sections run afresh.
        """
        node = self.edit(path)
        node.stage = section
        spec = self.m.snapshot[node.flow_ref or ""]
        for step in spec.section(section):
            cpath = child_path(path, section, step.name)
            existing = self.nodes.get(cpath)
            if section == "steps" and existing and existing.phase in ("Succeeded", "Skipped"):
                continue
            self.new_node(cpath, step.name, step, path, section)

    def advance_flow(self, path: str) -> None:
        while True:
            node = self.get(path)
            ref = node.flow_ref or ""
            section = node.stage
            steps = self.m.snapshot[ref].section(section)
            deps = self.m._deps[(ref, section)]
            open_children = False
            for step in steps:
                stop = section != "finally" and (
                    self.stopping() or (section == "steps" and self.nodes[path].failed)
                )
                cpath = child_path(path, section, step.name)
                child = self.nodes[cpath]
                if child.phase in TERMINAL_NODE_PHASES:
                    continue
                if child.phase != "Pending":
                    open_children = True
                    continue
                if stop:
                    self.complete(cpath, "Omitted", "not started", quiet=True)
                    continue
                if self.status.paused or not self.deps_done(path, section, deps[step.name]):
                    open_children = True
                    continue
                self.start_step(cpath, step)
                if self.nodes[cpath].phase not in TERMINAL_NODE_PHASES:
                    open_children = True
            if open_children:
                return
            if self.get(path).phase in TERMINAL_NODE_PHASES:
                return
            node = self.get(path)
            if section == "steps" and node.failed and not self.stopping():
                self.open_section(path, "onFailure")
            elif section in ("steps", "onFailure"):
                self.open_section(path, "finally")
            else:
                self.close_flow(path)
                return

    def deps_done(self, scope: str, section: str, deps: list[str]) -> bool:
        for dep in deps:
            if self.nodes[child_path(scope, section, dep)].phase not in TERMINAL_NODE_PHASES:
                return False
        return True

    def close_flow(self, path: str) -> None:
        node = self.get(path)
        timed_out = self.status.timed_out
        if self.stopping() and not self.in_finally(node):
            if timed_out:
                self.complete(path, "Failed", "run timed out")
            else:
                self.complete(path, "Cancelled", "cancelled")
            return
        if node.failed:
            self.complete(path, "Failed", node.message or "a step failed")
            return
        spec = self.m.snapshot[node.flow_ref or ""]
        variables = self.variables(node)
        try:
            outputs = {
                key: render(text, variables) if "${{" in text else evaluate(text, variables)
                for key, text in spec.outputs.items()
            }
        except ExpressionError as exc:
            self.complete(path, "Failed", f"outputs: {exc}")
            return
        self.complete(path, "Succeeded", outputs=outputs)

    # --- steps ------------------------------------------------------------------------

    def start_step(self, path: str, step: Step) -> None:
        node = self.edit(path)
        node.started_at = self.now
        node.finished_at = None
        scope = self.scope_of(node)
        variables = self.variables(scope)
        try:
            if step.when is not None and not truthy(step.when, variables):
                self.complete(path, "Skipped", f"when: {step.when.strip()} is false")
                return
            if step.step_timeout is not None:
                self.set_timer(path + "#step", self.now + step.step_timeout)
            if step.for_each is not None:
                self.start_group(path, step, variables)
            elif step.approval is not None:
                node.phase = "Waiting"
                node.message = step.approval.message or "waiting for approval"
                if step.approval.timeout is not None:
                    self.set_timer(path + "#approval", self.now + step.approval.timeout)
                users = _names(step.approval.users, variables)
                groups = _names(step.approval.groups, variables)
                node.params = {"users": users, "groups": groups}
                who = ", ".join([*users, *groups]) or "nobody (no approver named)"
                self.commands.append(
                    ev.Notice("ApprovalRequired", f"step {path} waits for approval by {who}")
                )
            else:
                self.start_unit(path, step, variables)
        except (ExpressionError, KeyError) as exc:
            self.complete(path, "Failed", str(exc).strip('"'))

    def start_unit(self, path: str, step: Step, variables: dict[str, Any]) -> None:
        """Start a task or subflow (a plain step or one fan-out member)."""
        params = render(step.params, variables)
        if step.flow is not None:
            ref = resolve_ref(self.m.snapshot, step.flow, step.version)
            self.start_flow(path, ref, params)
        else:
            node = self.edit(path)
            node.params = params
            node.action = step.action
            self.start_attempt(path)

    # --- task attempts ----------------------------------------------------------------

    def task_policy(self, node: NodeStatus) -> tuple[RetryPolicy, float | None, float | None]:
        if node.role == "gate":
            gate = self.gate_of(node)
            return gate.retry or _DEFAULT_RETRY, gate.timeout, None
        step = self.step_of(node)
        return step.retry or _DEFAULT_RETRY, step.timeout, step.heartbeat_timeout

    def gate_of(self, node: NodeStatus) -> HealthGate:
        strategy = self.step_of(self.get(node.parent or "")).strategy
        if strategy is None or strategy.health_gate is None:
            raise InvalidRequest(f"node {node.path!r} is a gate of a group without healthGate")
        return strategy.health_gate

    def start_attempt(self, path: str) -> None:
        node = self.edit(path)
        _, timeout, heartbeat = self.task_policy(node)
        number = node.compacted + len(node.attempts) + 1
        node.attempts.append(
            Attempt(n=number, phase="Running", started_at=self.now, actor=self.actor)
        )
        if len(node.attempts) > ATTEMPTS_KEPT:
            dropped = len(node.attempts) - ATTEMPTS_KEPT
            node.attempts = node.attempts[dropped:]
            node.compacted += dropped
        node.phase = "Running"
        node.retry_due = False
        if timeout is not None:
            self.set_timer(path + "#attempt", self.now + timeout)
        if heartbeat is not None:
            self.set_timer(path + "#hb", self.now + heartbeat)
        self.commands.append(ev.RunTask(path, node.action or "", node.params or {}, number))

    def current_attempt(self, node: NodeStatus, number: int) -> bool:
        return (
            node.phase == "Running"
            and bool(node.attempts)
            and node.attempts[-1].n == number
            and node.attempts[-1].phase == "Running"
        )

    def end_attempt(self, path: str, phase: str, error: str | None, message: str) -> None:
        node = self.edit(path)
        last = node.attempts[-1]
        node.attempts[-1] = clone(
            last, phase=phase, finished_at=self.now, error=error, message=message
        )
        for kind in ("#attempt", "#hb"):
            if self.timers.pop(path + kind, None) is not None:
                self.timers_changed = True

    def after_failure(self, path: str, kind: str, message: str) -> None:
        node = self.edit(path)
        node.failures += 1
        policy, _, _ = self.task_policy(node)
        retryable = kind in policy.retry_on and node.failures <= policy.limit
        if retryable and not (self.stopping() and not self.in_finally(node)):
            delay = backoff_delay(policy.backoff, node.failures, f"{self.m.info.id}/{path}")
            node.message = f"attempt failed ({kind}): {message}; retry in {delay:.3g}s"
            if delay <= 0 and not self.status.paused:
                self.start_attempt(path)
                return
            node.phase = "Retrying"
            self.set_timer(path + "#retry", self.now + delay)
            return
        self.complete(path, "Failed", f"{kind}: {message}")

    # --- groups -----------------------------------------------------------------------

    def start_group(self, path: str, step: Step, variables: dict[str, Any]) -> None:
        raw = step.for_each
        items = render(raw, variables) if isinstance(raw, list) else None
        if isinstance(raw, str):
            text = raw.strip()
            inner = text[3:-2] if text.startswith("${{") and text.endswith("}}") else text
            items = render("${{" + inner + "}}", variables)
        if not isinstance(items, list):
            raise ExpressionError(f"forEach {raw!r} must give a list, got {type(items).__name__}")
        strategy = step.strategy or _DEFAULT_STRATEGY
        parallelism = _positive_int(render(strategy.parallelism, variables), "parallelism")
        budget: int | None = None
        if strategy.disruption_budget is not None:
            limit = _int(render(strategy.disruption_budget.max_unavailable, variables), "budget")
            already = _int(render(strategy.disruption_budget.already_unavailable, variables), "")
            budget = limit - already
            if budget < 1 and items:
                raise ExpressionError(
                    f"disruptionBudget allows no member down (maxUnavailable {limit}, "
                    f"alreadyUnavailable {already}); restore members or raise the budget"
                )
        pause = render(strategy.pause, variables)
        if isinstance(pause, bool) or not isinstance(pause, int | float) or pause < 0:
            raise ExpressionError(f"strategy.pause must be a number of seconds, got {pause!r}")
        by = strategy.batches.by if strategy.batches is not None else None
        batches = plan_batches(
            items,
            strategy,
            (lambda i, item: render("${{" + by + "}}", {**variables, "item": item, "index": i}))
            if by
            else None,
        )
        node = self.edit(path)
        node.kind = "group"
        node.phase = "Running"
        node.parallelism = parallelism
        node.budget = budget
        node.pause = float(pause)
        node.batches = batches
        node.batch = 0
        node.next = 0
        node.active = 0
        node.down = 0
        node.failed_members = 0
        node.stage = "running"
        members = []
        for index, item in enumerate(items):
            member = self.new_node(f"{path}[{index}]", step.name, step, path, "steps", "member")
            member.item = item
            member.index = index
            members.append(member.path)
        node.members = members
        self.mark(path)

    def advance_group(self, path: str) -> None:
        group = self.get(path)
        step = self.step_of(group)
        strategy = step.strategy or _DEFAULT_STRATEGY
        members = group.members or []
        batches = group.batches or []
        while True:
            group = self.get(path)
            if group.stage == "pausing" or group.stage == "between":
                if self.stopping() and not self.in_finally(group):
                    self.close_group(path, False, False)
                    return
                if group.stage == "pausing" or self.status.paused:
                    return
                group = self.edit(path)
                if strategy.health_gate is not None:
                    group.stage = "gating"
                    self.start_gate(path, strategy.health_gate)
                    return
                group.batch += 1
                group.next = 0
                group.stage = "running"
                continue
            if group.stage == "gating":
                return
            parent_failed = self.get(group.parent or "").failed
            stop = self.stopping() and not self.in_finally(group)
            blocked = False
            if not batches:
                self.complete(path, "Succeeded", outputs=[])
                return
            batch = batches[group.batch]
            while group.next < len(batch) and not (
                stop or parent_failed or self.group_failing(group, strategy)
            ):
                member_path = members[batch[group.next]]
                member = self.nodes[member_path]
                if member.phase == "Succeeded" or member.phase == "Skipped":
                    group = self.edit(path)
                    group.next += 1
                    continue
                if self.status.paused or group.active >= group.parallelism:
                    break
                if group.budget is not None and group.active + group.down >= group.budget:
                    blocked = True
                    break
                group = self.edit(path)
                group.next += 1
                group.active += 1
                self.start_member(member_path, step)
                group = self.get(path)
            if group.active > 0:
                return
            failing = self.group_failing(group, strategy)
            if stop or failing or parent_failed or blocked:
                self.close_group(path, failing, blocked)
                return
            if group.next < len(batch):
                return
            if group.batch + 1 >= len(batches):
                outputs = [self.nodes[m].outputs for m in members]
                message = (
                    f"{group.failed_members} member(s) failed within the failure budget"
                    if group.failed_members
                    else ""
                )
                self.complete(path, "Succeeded", message, outputs=outputs)
                return
            group = self.edit(path)
            if group.pause > 0:
                group.stage = "pausing"
                self.set_timer(path + "#pause", self.now + group.pause)
                return
            group.stage = "between"

    @staticmethod
    def group_failing(group: NodeStatus, strategy: GroupStrategy) -> bool:
        return group.failed_members > strategy.failure_budget or group.stage == "gate-failed"

    def start_member(self, path: str, step: Step) -> None:
        member = self.edit(path)
        member.started_at = self.now
        member.finished_at = None
        variables = self.variables(
            self.scope_of(member), {"item": member.item, "index": member.index}
        )
        try:
            self.start_unit(path, step, variables)
        except (ExpressionError, KeyError) as exc:
            self.complete(path, "Failed", str(exc).strip('"'))

    def start_gate(self, path: str, gate: HealthGate) -> None:
        group = self.get(path)
        gate_path = f"{path}.gate[{group.batch}]"
        previous = self.nodes.get(gate_path)
        node = NodeStatus(
            path=gate_path,
            name=f"{group.name}.gate",
            kind="task",
            parent=path,
            role="gate",
            section=group.section,
            action=gate.action,
            started_at=self.now,
            index=group.batch,
        )
        if previous is not None:
            node.attempts = list(previous.attempts)
            node.compacted = previous.compacted
        self.put(node)
        variables = self.variables(self.scope_of(group), {"batch": group.batch})
        try:
            node.params = render(gate.params, variables)
        except ExpressionError as exc:
            self.complete(gate_path, "Failed", str(exc))
            return
        self.start_attempt(gate_path)

    def close_group(self, path: str, failing: bool, blocked: bool) -> None:
        group = self.get(path)
        for member_path in group.members or []:
            if self.nodes[member_path].phase == "Pending":
                self.complete(member_path, "Omitted", "not started", quiet=True)
        if self.stopping() and not self.in_finally(group):
            self.complete(path, "Cancelled" if not self.status.timed_out else "Failed", "stopped")
        elif group.stage == "gate-failed":
            self.complete(path, "Failed", f"health gate after batch {group.batch} failed")
        elif failing:
            self.complete(
                path, "Failed", f"{group.failed_members} member(s) failed; failure budget exceeded"
            )
        elif blocked:
            self.complete(
                path,
                "Failed",
                f"disruption budget exhausted: {group.down} failed member(s) still down "
                f"of {group.budget} allowed",
            )
        else:
            self.complete(path, "Failed", "stopped: a sibling step failed")

    # --- stopping ---------------------------------------------------------------------

    def stop_leaves(self, reason: str, phase: str) -> None:
        """Cancel running work outside ``finally`` sections; mark every open scope dirty."""
        for path, node in list(self.nodes.items()):
            if node.phase in TERMINAL_NODE_PHASES or self.in_finally(node):
                continue
            if node.kind == "task" and node.phase in ("Running", "Retrying"):
                if node.phase == "Running":
                    attempt = node.attempts[-1].n
                    self.end_attempt(path, "Cancelled", None, reason)
                    self.commands.append(ev.CancelTask(path, attempt))
                self.complete(path, phase, reason)
            elif node.kind == "approval" and node.phase == "Waiting":
                self.complete(path, phase, reason)
        for path, node in self.nodes.items():
            if node.kind in ("flow", "group") and node.phase not in TERMINAL_NODE_PHASES:
                self.mark(path)

    def abort_subtree(self, path: str, message: str) -> None:
        """Fail one step (its timeout expired), cancelling the work running under it."""
        prefixes = (path + "/", path + "[", path + ".gate[")
        for cpath, node in list(self.nodes.items()):
            if node.phase in TERMINAL_NODE_PHASES or not cpath.startswith(prefixes):
                continue
            if node.kind == "task" and node.phase == "Running":
                attempt = node.attempts[-1].n
                self.end_attempt(cpath, "Cancelled", None, message)
                self.commands.append(ev.CancelTask(cpath, attempt))
            self.complete(cpath, "Cancelled", message, quiet=True)
        node = self.get(path)
        if node.kind == "task" and node.phase == "Running":
            attempt = node.attempts[-1].n
            self.end_attempt(path, "Cancelled", None, message)
            self.commands.append(ev.CancelTask(path, attempt))
        self.complete(path, "Failed", message)


def apply_defaults(spec: FlowSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Params with defaults filled in; a missing required or unknown parameter is an error."""
    unknown = sorted(set(params) - set(spec.parameters))
    if unknown:
        known = ", ".join(sorted(spec.parameters)) or "none"
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; this flow takes: {known}")
    resolved = dict(params)
    for name, parameter in spec.parameters.items():
        if name not in resolved:
            if parameter.default is None:
                raise ValueError(f"parameter {name!r} is required ({parameter.type})")
            resolved[name] = parameter.default
    return resolved


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"{field or 'value'} must be an integer, got {value!r}")
    return int(value)


def _positive_int(value: Any, field: str) -> int:
    number = _int(value, field)
    if number < 1:
        raise ExpressionError(f"{field} must be at least 1, got {number}")
    return number


# --- event handlers ---------------------------------------------------------------------


def _on_start(tx: _Tx, event: ev.Event) -> None:
    root = tx.get("")
    if root.phase != "Pending":
        raise InvalidRequest(f"run already started (phase {root.phase})")
    tx.status.started_at = tx.now
    spec = tx.m.snapshot[tx.m.root]
    if spec.timeout is not None:
        tx.set_timer("#run", tx.now + spec.timeout)
    tx.commands.append(ev.Notice("RunStarted", f"run of {tx.m.root} started"))
    tx.start_flow("", tx.m.root, tx.status.params)


def _on_recover(tx: _Tx, event: ev.Event) -> None:
    for path, node in list(tx.nodes.items()):
        if node.kind != "task" or node.phase != "Running":
            continue
        tx.end_attempt(path, "Interrupted", None, "engine stopped during the attempt")
        if tx.stopping() and not tx.in_finally(node):
            tx.complete(path, "Cancelled", "cancelled")
        else:
            tx.start_attempt(path)
    tx.timers_changed = True
    for path, node in tx.nodes.items():
        if node.kind in ("flow", "group") and node.phase not in TERMINAL_NODE_PHASES:
            tx.mark(path)


def _on_success(tx: _Tx, event: ev.TaskSucceeded) -> None:
    node = tx.nodes.get(event.path)
    if node is None or not tx.current_attempt(node, event.attempt):
        return
    tx.end_attempt(event.path, "Succeeded", None, "")
    tx.complete(event.path, "Succeeded", "", outputs=event.outputs if event.outputs else {})


def _on_failure(tx: _Tx, event: ev.TaskFailed) -> None:
    node = tx.nodes.get(event.path)
    if node is None or not tx.current_attempt(node, event.attempt):
        return
    tx.end_attempt(event.path, "Failed", event.kind, event.message)
    tx.after_failure(event.path, event.kind, event.message)


def _on_heartbeat(tx: _Tx, event: ev.Heartbeat) -> None:
    node = tx.nodes.get(event.path)
    if node is None or not tx.current_attempt(node, event.attempt):
        return
    edited = tx.edit(event.path)
    edited.message = event.message
    _, _, heartbeat = tx.task_policy(edited)
    if heartbeat is not None:
        tx.set_timer(event.path + "#hb", tx.now + heartbeat)


def _on_tick(tx: _Tx, event: ev.Event) -> None:
    due = sorted((at, key) for key, at in tx.timers.items() if at <= tx.now)
    for _, key in due:
        if key not in tx.timers:
            continue
        del tx.timers[key]
        tx.timers_changed = True
        path, _, kind = key.rpartition("#")
        if kind == "run":
            tx.status.timed_out = True
            tx.stop_leaves("run timed out", "Failed")
            continue
        node = tx.nodes.get(path)
        if node is None or node.phase in TERMINAL_NODE_PHASES:
            continue
        _fire(tx, path, node, kind)


def _fire(tx: _Tx, path: str, node: NodeStatus, kind: str) -> None:
    if kind == "retry" and node.phase == "Retrying":
        if tx.stopping() and not tx.in_finally(node):
            tx.complete(path, "Cancelled", "cancelled")
        elif tx.status.paused:
            tx.edit(path).retry_due = True
        else:
            tx.start_attempt(path)
    elif kind in ("attempt", "hb") and node.phase == "Running":
        attempt = node.attempts[-1].n
        message = "attempt timed out" if kind == "attempt" else "no heartbeat in time"
        tx.end_attempt(path, "Failed", "Timeout", message)
        tx.commands.append(ev.CancelTask(path, attempt))
        tx.after_failure(path, "Timeout", message)
    elif kind == "step":
        tx.abort_subtree(path, "step timed out")
    elif kind == "approval" and node.phase == "Waiting":
        approval = tx.step_of(node).approval
        approved = approval is not None and approval.default == "approve"
        _decide(tx, path, approved, "system:timeout", "approval timed out; default applied")
    elif kind == "pause":
        tx.edit(path).stage = "between"
        tx.mark(path)


def _on_cancel(tx: _Tx, event: ev.Cancel) -> None:
    if tx.status.phase in ("Succeeded", "Failed", "Cancelled"):
        raise InvalidRequest(f"run already finished ({tx.status.phase}); nothing to cancel")
    tx.status.cancelled = True
    tx.status.message = f"cancelled by {event.actor or 'unknown'}: {event.reason}".rstrip(": ")
    tx.commands.append(ev.Notice("RunCancelling", tx.status.message, True))
    if tx.get("").phase == "Pending":
        tx.complete("", "Cancelled", tx.status.message)
        return
    tx.stop_leaves("cancelled", "Cancelled")


def _on_pause(tx: _Tx, event: ev.Event) -> None:
    if tx.status.phase in ("Succeeded", "Failed", "Cancelled"):
        raise InvalidRequest(f"run already finished ({tx.status.phase}); cannot pause")
    tx.status.paused = True


def _on_resume(tx: _Tx, event: ev.Event) -> None:
    if not tx.status.paused:
        raise InvalidRequest("run is not paused")
    tx.status.paused = False
    for path, node in list(tx.nodes.items()):
        if node.retry_due and node.phase == "Retrying":
            tx.start_attempt(path)
        elif node.kind in ("flow", "group") and node.phase not in TERMINAL_NODE_PHASES:
            tx.mark(path)


def _on_retry(tx: _Tx, event: ev.Event) -> None:
    if tx.status.phase != "Failed":
        raise InvalidRequest(f"only a Failed run can be retried; this one is {tx.status.phase}")
    tx.status.cancelled = False
    tx.status.timed_out = False
    tx.status.finished_at = None
    tx.status.message = f"retried by {event.actor or 'unknown'}"
    spec = tx.m.snapshot[tx.m.root]
    if spec.timeout is not None:
        tx.set_timer("#run", tx.now + spec.timeout)
    # A failed node runs again only under a parent that runs again (a step that failed
    # inside a group or subflow that succeeded stays as it is). Handler steps (onFailure,
    # finally) are not reset: their sections open afresh if the run reaches them again;
    # health gates are recreated by their group.
    failed = {
        p
        for p, n in tx.nodes.items()
        if n.phase in ("Failed", "Omitted", "Cancelled")
        and n.role != "gate"
        and not tx.in_handler(n)
    }
    reset: list[str] = [""] if "" in failed else []
    chosen = set(reset)
    resumed = set(reset)
    grew = True
    while grew:
        grew = False
        for path in failed - chosen:
            node = tx.nodes[path]
            if node.parent in resumed:
                chosen.add(path)
                reset.append(path)
                grew = True
                if _resumes(node):
                    resumed.add(path)
    for path in reset:
        node = tx.edit(path)
        node.phase = "Pending"
        node.finished_at = None
        node.failures = 0
        node.message = ""
        node.decision = None
        if node.kind == "flow" and node.role != "member" and node.flow_ref and node.stage:
            node.phase = "Running"
            node.stage = "steps"
            node.failed = False
        elif node.kind == "group" and node.batches is not None:
            node.phase = "Running"
            _reset_group(tx, path)
    root = tx.edit("")
    root.phase = "Running"
    tx.commands.append(ev.Notice("RunRetried", tx.status.message))
    for path, node in tx.nodes.items():
        if node.kind in ("flow", "group") and node.phase == "Running":
            tx.mark(path)


def _resumes(node: NodeStatus) -> bool:
    """Whether a retried node continues where it stopped (else it starts from Pending)."""
    if node.kind == "flow":
        return node.role != "member" and bool(node.flow_ref and node.stage)
    return node.kind == "group" and node.batches is not None


def _reset_group(tx: _Tx, path: str) -> None:
    group = tx.edit(path)
    batches = group.batches or []
    members = group.members or []
    first = len(batches) - 1
    for number, batch in enumerate(batches):
        if any(tx.nodes[members[i]].phase != "Succeeded" for i in batch):
            first = number
            break
    group.active = 0
    group.down = 0
    group.failed_members = 0
    if first > 0:
        # Resume between the last finished batch and the first unfinished one, so the
        # health gate is passed again before any further member is touched.
        group.batch = first - 1
        group.next = len(batches[first - 1])
        group.stage = "between"
    else:
        group.batch = 0
        group.next = 0
        group.stage = "running"


def _on_decide(tx: _Tx, event: ev.Decide) -> None:
    node = tx.nodes.get(event.path)
    if node is None or node.kind != "approval":
        raise InvalidRequest(f"{event.path!r} is not an approval step of this run")
    if node.phase != "Waiting":
        raise InvalidRequest(f"approval {event.path!r} is not waiting (phase {node.phase})")
    approval = tx.step_of(node).approval
    assert approval is not None
    rendered = node.params or {}
    users = list(rendered.get("users", approval.users))
    groups = list(rendered.get("groups", approval.groups))
    requester = tx.m.info.requested_by
    if event.approved and event.actor == requester:
        raise ApprovalDenied(
            f"{event.actor!r} requested this run and may not approve it; ask one of "
            f"{', '.join([*users, *groups])}"
        )
    allowed = event.actor in users or bool(set(event.groups) & set(groups))
    if not allowed and not (not event.approved and event.actor == requester):
        raise ApprovalDenied(
            f"{event.actor!r} may not decide approval {event.path!r}; allowed users: "
            f"{users}, groups: {groups}"
        )
    if approval.proof and not event.proven:
        raise ApprovalDenied(
            f"approval {event.path!r} takes decisions only through milkyway server "
            f"(POST .../flowruns/RUN/decisions/approve); this request carries no valid "
            "server signature"
        )
    if not event.approved or approval.required <= 1:
        _decide(tx, event.path, event.approved, event.actor, event.reason)
        return
    counted = list(node.approvals or [])
    if any(d.by == event.actor for d in counted):
        raise InvalidRequest(
            f"{event.actor!r} already approved {event.path!r}; an approver counts once "
            f"({len(counted)} of {approval.required} distinct approvals)"
        )
    counted.append(Decision(approved=True, by=event.actor, at=tx.now, reason=event.reason))
    edited = tx.edit(event.path)
    edited.approvals = counted
    if len(counted) < approval.required:
        edited.message = (
            f"{len(counted)} of {approval.required} approvals "
            f"({', '.join(d.by for d in counted)}); waiting for "
            f"{approval.required - len(counted)} more from "
            f"{', '.join([*users, *(f'group:{g}' for g in groups)])}"
        )
        tx.commands.append(
            ev.Notice(
                "ApprovalCounted",
                f"{event.path} approved by {event.actor}: {len(counted)} of {approval.required}",
            )
        )
        return
    by = ",".join(d.by for d in counted)
    _decide(tx, event.path, True, by, event.reason)


def _decide(tx: _Tx, path: str, approved: bool, actor: str, reason: str) -> None:
    node = tx.edit(path)
    node.decision = Decision(approved=approved, by=actor, at=tx.now, reason=reason)
    verb = "approved" if approved else "rejected"
    tx.commands.append(ev.Notice(f"Approval{verb.title()}", f"{path} {verb} by {actor}: {reason}"))
    if approved:
        tx.complete(path, "Succeeded", f"{verb} by {actor}", outputs={"approvedBy": actor})
    else:
        tx.complete(path, "Failed", f"{verb} by {actor}: {reason}".rstrip(": "))


def _names(entries: list[str], variables: dict[str, Any]) -> list[str]:
    """Approvers as written: plain names, or ``${{ expr }}`` entries giving a name or a
    list of names (an approval whose approvers are the run's parameters)."""
    names: list[str] = []
    for entry in entries:
        value = render(entry, variables)
        for name in value if isinstance(value, list) else [value]:
            if name not in (None, "") and str(name) not in names:
                names.append(str(name))
    return names


_HANDLERS: dict[type, Any] = {
    ev.Start: _on_start,
    ev.Recover: _on_recover,
    ev.TaskSucceeded: _on_success,
    ev.TaskFailed: _on_failure,
    ev.Heartbeat: _on_heartbeat,
    ev.Tick: _on_tick,
    ev.Cancel: _on_cancel,
    ev.Pause: _on_pause,
    ev.Resume: _on_resume,
    ev.Retry: _on_retry,
    ev.Decide: _on_decide,
}

"""The ``Flow`` (a declarative lifecycle operation) and ``FlowRun`` (one execution) resources.

A Flow reads top to bottom like documentation: typed parameters, then steps that run in
order unless ``after:`` says otherwise, each a task from the task registry, a subflow, an
approval gate, or a ``forEach`` fan-out governed by a group strategy. Expressions
(``when:``, ``${{ … }}`` parameter values) are CEL; they are compiled and checked by
``milkyway.flows.dsl`` because this package depends on nothing but pydantic.

A FlowRun's status *is* the engine's state: the pure core in ``milkyway.flows.core`` maps
(spec, status, event) to (new status, commands), and the store persists the status with
resourceVersion preconditions. A snapshot of every flow the run uses, and its hash, is kept
in the status so that editing a Flow never changes a run in progress.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from milkyway.model.base import API_VERSION, DnsLabel, Model, ObjectMeta
from milkyway.model.crd_schema import AGE_COLUMN, CrdInfo, PrinterColumn

IntOrString = Annotated[
    int | str,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""An integer, or a string such as ``"25%"`` or ``"${{ params.maxDown }}"``."""


def _free(description: str) -> WithJsonSchema:
    return WithJsonSchema(
        {"x-kubernetes-preserve-unknown-fields": True, "description": description}
    )


ErrorKind = Literal["Retryable", "Fatal", "Timeout", "Error"]
_RETRIED_BY_DEFAULT: tuple[ErrorKind, ...] = ("Retryable", "Timeout", "Error")
"""How an attempt failed: a task's typed error, an attempt timeout, or an unexpected error."""

PERCENT_RE = re.compile(r"^(100|[1-9]?[0-9])%$")


class Backoff(Model):
    """Exponential backoff between attempts: ``duration * factor**(n-1)``, capped, jittered."""

    duration: float = Field(default=1.0, ge=0)
    """Seconds before the first retry."""
    factor: float = Field(default=2.0, ge=1)
    """Multiplier applied for every further retry."""
    max_duration: float = Field(default=300.0, ge=0)
    """Cap on a single wait, in seconds."""
    jitter: float = Field(default=0.0, ge=0, le=1)
    """Fraction of the wait removed at random (deterministically per run, step, attempt)."""


class RetryPolicy(Model):
    """How often and on which errors a step is attempted again (``limit`` retries = limit+1)."""

    limit: int = Field(default=0, ge=0)
    """Number of retries after the first attempt."""
    retry_on: list[ErrorKind] = Field(default_factory=lambda: list(_RETRIED_BY_DEFAULT))
    """Error kinds that are retried; ``Fatal`` errors are only retried when listed."""
    backoff: Backoff = Field(default_factory=Backoff)
    """Wait between attempts; waits are durable (they survive an engine restart)."""


class Batching(Model):
    """How a fan-out is cut into batches that run one after another."""

    size: int | None = Field(default=None, ge=1)
    """Fixed number of members per batch."""
    by: str | None = None
    """CEL expression giving each member's batch key (e.g. ``item.zone``): one batch per key."""
    max_unavailable: IntOrString | None = None
    """Batch size as a count or a percentage of the members (``"25%"``, at least one)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Batching:
        chosen = [n for n in ("size", "by", "max_unavailable") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "batches needs exactly one of size, by, maxUnavailable; got "
                f"{', '.join(chosen) or 'none'}"
            )
        value = self.max_unavailable
        if isinstance(value, str) and not PERCENT_RE.match(value):
            raise ValueError(f"batches.maxUnavailable {value!r} must be an integer or like '25%'")
        return self


class DisruptionBudget(Model):
    """A caller-supplied limit on members down at once, across all batches and zones.

    A member counts as down from the moment it starts until it succeeds; a member that
    failed stays down, so failures consume the budget (as a lost quorum member would).
    """

    max_unavailable: IntOrString
    """Members of the group that may be down at once (an integer or a ``${{ }}`` expression)."""
    already_unavailable: IntOrString = 0
    """Members already down before the flow starts (e.g. from observed health)."""


class HealthGate(Model):
    """A task that must succeed between two batches before the next one starts."""

    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy | None = None
    timeout: float | None = Field(default=None, gt=0)


class GroupStrategy(Model):
    """How the members of a ``forEach`` are scheduled: the group operation policy."""

    parallelism: IntOrString = 1
    """Members running at once within a batch (default one at a time, the safe choice)."""
    batches: Batching | None = None
    """Cut the members into sequential batches; without it all members form one batch."""
    canary: int = Field(default=0, ge=0)
    """Size of a first batch run alone (followed by the pause and health gate)."""
    pause: Annotated[float | str, _free("Seconds between batches, or a CEL expression.")] = 0.0
    """Seconds to wait between batches (a durable timer); a number or ``${{ }}``."""
    health_gate: HealthGate | None = None
    """Task that must succeed between batches; if it fails the group fails."""
    failure_budget: int = Field(default=0, ge=0)
    """Member failures tolerated before the group stops and fails."""
    disruption_budget: DisruptionBudget | None = None


class Approval(Model):
    """A gate a person must pass; who may, how long to wait, and what happens on timeout."""

    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    timeout: float | None = Field(default=None, gt=0)
    """Seconds to wait; then ``default`` applies, recorded as decided by ``system:timeout``."""
    default: Literal["approve", "reject"] = "reject"
    message: str = ""
    required: int = Field(default=1, ge=1, le=20)
    """Distinct approvers needed (N of the M allowed); one approving twice counts once."""
    proof: bool = False
    """Decisions count only when ``milkyway server`` signed them (its decision key): a
    request written on the FlowRun by anyone else is refused, whatever actor it names."""
    policy: str = ""
    """``namespace/name`` of the ApprovalPolicy that put this gate here, if any."""

    @model_validator(mode="after")
    def _someone(self) -> Approval:
        if not self.users and not self.groups:
            raise ValueError("approval needs at least one of users or groups who may approve")
        return self


class Step(Model):
    """One step: exactly one of ``action`` (a task), ``flow`` (a subflow) or ``approval``."""

    name: DnsLabel
    action: str | None = None
    """Registered task name, e.g. ``k8s.apply``."""
    flow: str | None = None
    """Name of a subflow to run with ``params``."""
    version: str | None = None
    """Version of the subflow; the newest known when left out."""
    approval: Approval | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    """Task or subflow parameters; a string ``${{ expr }}`` is a CEL expression."""
    after: list[str] | None = None
    """Steps this one waits for; default: the previous step. ``[]`` starts immediately."""
    when: str | None = None
    """CEL condition; when false the step is Skipped."""
    for_each: Annotated[str | list[Any] | None, _free("A list, or a CEL expression.")] = None
    """Items to fan out over (a list or a CEL expression); each member sees ``item``/``index``."""
    strategy: GroupStrategy | None = None
    retry: RetryPolicy | None = None
    timeout: float | None = Field(default=None, gt=0)
    """Seconds per attempt."""
    step_timeout: float | None = Field(default=None, gt=0)
    """Seconds for the whole step including retries and waits."""
    heartbeat_timeout: float | None = Field(default=None, gt=0)
    """An attempt that does not heartbeat for this long fails with ``Timeout``."""
    continue_on_error: bool = False
    """A failure of this step does not fail the flow; later steps still run."""

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in ("action", "flow", "approval") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"step {self.name!r} needs exactly one of action, flow, approval; "
                f"got {', '.join(kinds) or 'none'}"
            )
        if self.approval is not None and self.for_each is not None:
            raise ValueError(f"step {self.name!r}: an approval cannot use forEach")
        if self.strategy is not None and self.for_each is None:
            raise ValueError(f"step {self.name!r}: strategy only applies with forEach")
        return self


class Parameter(Model):
    """A typed flow parameter; without a default it is required."""

    type: Literal["string", "integer", "number", "boolean", "array", "object"] = "string"
    default: Any = None
    description: str = ""
    enum: list[Any] | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    """Extra JSON-schema keywords (minimum, pattern, items, …)."""

    def to_json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = dict(self.json_schema or {})
        schema["type"] = self.type
        if self.enum is not None:
            schema["enum"] = self.enum
        if self.description:
            schema["description"] = self.description
        return schema


class Schedule(Model):
    """Run this flow on a cron schedule, e.g. a periodic health check."""

    cron: str
    timezone: str = "UTC"
    overlap_policy: Literal["Skip", "Queue", "Replace"] = "Skip"
    """When the previous run is still going: skip this one, queue it, or cancel and replace."""
    params: dict[str, Any] = Field(default_factory=dict)
    target: str = ""


class ConcurrencyLimit(Model):
    """At most ``limit`` runs whose ``key`` renders equal may run at once (e.g. per cluster)."""

    key: str
    limit: int = Field(ge=1)


class FlowSpec(Model):
    """A declarative lifecycle operation."""

    version: str = "1"
    description: str = ""
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    on_failure: list[Step] = Field(default_factory=list)
    """Compensation steps run when a step failed (not on cancellation)."""
    finally_: list[Step] = Field(default_factory=list, alias="finally")
    """Cleanup steps run at the end whatever happened, including cancellation."""
    outputs: dict[str, str] = Field(default_factory=dict)
    """Flow outputs: names to CEL expressions over ``params`` and ``steps``."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds for the whole run; then running steps are cancelled and the run fails."""
    mutex: str | None = None
    """Key (``${{ }}`` allowed) of which only one run at a time may hold, e.g. per component."""
    concurrency: list[ConcurrencyLimit] = Field(default_factory=list)
    schedule: Schedule | None = None
    events: Literal["all", "warnings"] = "all"
    """Which of a run's notices are recorded as Kubernetes Events on the FlowRun: ``all``
    (started, succeeded, approvals...) or only ``warnings`` (failed, cancelled, a request
    refused), for a flow run every few minutes for every Application, whose runs would
    otherwise add two Events each to the namespace."""

    @model_validator(mode="after")
    def _well_formed(self) -> FlowSpec:
        for section, steps in (
            ("steps", self.steps),
            ("onFailure", self.on_failure),
            ("finally", self.finally_),
        ):
            _check_section(section, steps)
        names = [s.name for s in (*self.steps, *self.on_failure, *self.finally_)]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(
                f"step names must be unique across steps, onFailure and finally: {twice}"
            )
        return self

    def section(self, name: str) -> list[Step]:
        if name == "steps":
            return self.steps
        if name == "onFailure":
            return self.on_failure
        return self.finally_

    def subflow_refs(self) -> list[tuple[str, str | None]]:
        refs: list[tuple[str, str | None]] = []
        for steps in (self.steps, self.on_failure, self.finally_):
            refs.extend((s.flow, s.version) for s in steps if s.flow is not None)
        return refs


def step_dependencies(steps: list[Step]) -> dict[str, list[str]]:
    """Each step's dependencies, with the implicit "previous step" filled in."""
    deps: dict[str, list[str]] = {}
    previous: str | None = None
    for step in steps:
        if step.after is not None:
            deps[step.name] = list(step.after)
        else:
            deps[step.name] = [previous] if previous is not None else []
        previous = step.name
    return deps


def _check_section(section: str, steps: list[Step]) -> None:
    names = [s.name for s in steps]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{section}: step name {name!r} is used twice; names must be unique")
        seen.add(name)
    deps = step_dependencies(steps)
    for name, after in deps.items():
        for dep in after:
            if dep not in seen:
                raise ValueError(
                    f"{section}.{name}.after: {dep!r} is not a step of {section}; "
                    f"known steps: {', '.join(names)}"
                )
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*trail[trail.index(name) :], name])
            raise ValueError(f"{section}: the after: dependencies form a cycle: {cycle}")
        state[name] = 1
        for dep in deps[name]:
            visit(dep, [*trail, name])
        state[name] = 2

    for name in names:
        visit(name, [])


class Flow(Model):
    """The ``Flow`` resource (also the format of flow files shipped in packages)."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        plural="flows",
        printer_columns=(
            PrinterColumn("Version", ".spec.version"),
            PrinterColumn("Description", ".spec.description", priority=1),
            AGE_COLUMN,
        ),
    )

    api_version: Literal["milkyway.ebay.com/v1"] = API_VERSION
    kind: Literal["Flow"] = "Flow"
    metadata: ObjectMeta
    spec: FlowSpec


# --- FlowRun -------------------------------------------------------------------------------

RunPhase = Literal["Pending", "Running", "Paused", "Succeeded", "Failed", "Cancelled"]
NodePhase = Literal[
    "Pending",
    "Running",
    "Retrying",
    "Waiting",
    "Succeeded",
    "Failed",
    "Skipped",
    "Omitted",
    "Cancelled",
]
TERMINAL_NODE_PHASES = frozenset({"Succeeded", "Failed", "Skipped", "Omitted", "Cancelled"})
TERMINAL_RUN_PHASES = frozenset({"Succeeded", "Failed", "Cancelled"})
DONE_LABEL = "milkyway.ebay.com/flow-done"
"""Set to ``"true"`` on a finished run with nothing left to do; removed by a new request.
Engines list only runs without it, so a namespace's finished runs cost no poll."""


class RunRequest(Model):
    """An operation asked of a run (by the CLI or API); the engine applies each exactly once."""

    id: str
    op: Literal["cancel", "pause", "resume", "retry", "approve", "reject"]
    actor: str
    groups: list[str] = Field(default_factory=list)
    step: str | None = None
    """Path of the approval step, for approve/reject."""
    reason: str = ""
    proof: str = ""
    """The server's signature of this decision (see ``milkyway.security.decision_proof``)."""


class FlowRunSpec(Model):
    flow: str
    version: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    target: str = ""
    """What the run acts on (e.g. ``stream1/zookeeper``), shown by ``kubectl get flowruns``."""
    requested_by: str = ""
    """Who asked for the run; they may not approve its approval gates."""
    locks: list[str] = Field(default_factory=list)
    """Extra ``limit:key`` locks to hold besides the flow's own mutex and concurrency
    limits; kept in the spec so any engine can start a run whose creator stopped before
    writing its status."""
    requests: list[RunRequest] = Field(default_factory=list)
    gates: list[Step] = Field(default_factory=list)
    """Steps run, in order, before the flow's own steps: an ApprovalPolicy's approval
    gates, then the opening of the run's change record."""
    closers: list[Step] = Field(default_factory=list)
    """Steps added to the run's ``finally`` section, so they run however it ends (the
    closing of its change record)."""


class Attempt(Model):
    """The audit record of one attempt of a step."""

    n: int
    phase: Literal["Running", "Succeeded", "Failed", "Cancelled", "Interrupted"]
    started_at: float
    finished_at: float | None = None
    error: ErrorKind | None = None
    message: str = ""
    actor: str = ""
    """The engine (or person) that ran it."""

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


class Decision(Model):
    """Who decided an approval gate, when, and why."""

    approved: bool
    by: str
    at: float
    reason: str = ""


class NodeStatus(Model):
    """One node of the run tree: a step, a fan-out member, a health gate or a (sub)flow."""

    path: str
    name: str
    kind: Literal["flow", "task", "approval", "group"]
    parent: str | None = None
    role: Literal["step", "member", "gate"] = "step"
    phase: NodePhase = "Pending"
    section: str = "steps"
    flow_ref: str | None = None
    """For flow nodes: ``name@version`` of the flow in the run's snapshot."""
    action: str | None = None
    params: dict[str, Any] | None = None
    outputs: Any = None
    item: Any = None
    index: int | None = None
    message: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    compacted: int = 0
    """Older attempts dropped from ``attempts`` to bound the status size."""
    failures: int = 0
    """Failed attempts counted against the retry limit (since the last retry of the run)."""
    retry_due: bool = False
    # flow nodes
    stage: str = ""
    """Flow nodes: the section running (steps, onFailure, finally); groups: running,
    pausing, between (batches), gating or gate-failed."""
    failed: bool = False
    # group nodes
    members: list[str] | None = None
    batches: list[list[int]] | None = None
    batch: int = 0
    next: int = 0
    active: int = 0
    down: int = 0
    failed_members: int = 0
    parallelism: int = 1
    budget: int | None = None
    pause: float = 0.0
    # approval nodes
    decision: Decision | None = None
    approvals: list[Decision] | None = None
    """Approvals counted so far towards ``required`` (one per distinct approver)."""


class FlowRunStatus(Model):
    phase: RunPhase = "Pending"
    progress: str = ""
    message: str = ""
    spec_hash: str = ""
    snapshot: Annotated[dict[str, FlowSpec], _free("Flows used by the run.")] = Field(
        default_factory=dict
    )
    """Every flow the run uses, keyed ``name@version``; the first key is the run's flow."""
    root: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    nodes: Annotated[dict[str, NodeStatus], _free("The run tree by node path.")] = Field(
        default_factory=dict
    )
    timers: dict[str, float] = Field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    now: float = 0.0
    cancelled: bool = False
    timed_out: bool = False
    paused: bool = False
    seq: int = 0
    """Transitions applied; with the owner it fences engines against each other."""
    owner: str = ""
    lease_until: float = 0.0
    processed_requests: list[str] = Field(default_factory=list)
    holds: list[str] = Field(default_factory=list)
    """Mutex and concurrency keys this run holds."""
    outputs: Any = None
    forgotten: int = Field(default=0, ge=0)
    """Task and approval nodes below succeeded group members dropped from ``nodes`` to
    keep the status small; ``progress`` still counts them as done."""


class FlowRun(Model):
    """One execution of a Flow; its status is the engine's durable state."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        plural="flowruns",
        short_names=("fr",),
        printer_columns=(
            PrinterColumn("Flow", ".spec.flow"),
            PrinterColumn("Target", ".spec.target"),
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn("Progress", ".status.progress"),
            AGE_COLUMN,
        ),
    )
    api_version: Literal["milkyway.ebay.com/v1"] = API_VERSION
    kind: Literal["FlowRun"] = "FlowRun"
    metadata: ObjectMeta
    spec: FlowRunSpec
    status: FlowRunStatus = Field(default_factory=FlowRunStatus)

    @field_validator("status", mode="before")
    @classmethod
    def _empty_status(cls, value: Any) -> Any:
        return {} if value is None else value

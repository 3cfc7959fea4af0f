"""The imperative shell around the pure core: persists transitions, runs tasks, keeps time.

Durability contract, in the order the driver does things for every event:

1. apply the event to the run status with the pure core;
2. write the new status to the store with the resourceVersion precondition;
3. only then start the commands' effects (tasks, timers, Events).

A task's completion is itself an event, persisted before anything depends on it. An
engine that starts (or takes over a run whose lease expired) applies ``Recover``: an
attempt still marked running was lost and runs again, so tasks run *at least once* and
must be idempotent (see ``milkyway.flows.tasks``).

Fencing: a run is advanced only by the engine named in ``status.owner`` while its lease
holds. Every write carries the resourceVersion read, so if another engine claimed the run
in between, the write fails with a conflict and this engine lets the run go without
starting anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from milkyway.flows import builtin as _builtin  # noqa: F401  (registers built-in tasks)
from milkyway.flows import events as ev
from milkyway.flows import metrics
from milkyway.flows.core import InvalidRequest, Machine, RunInfo, clone
from milkyway.flows.dsl import Catalog, FlowError, check_flow, snapshot_hash, validate_params
from milkyway.flows.expr import ExpressionError, render
from milkyway.flows.gates import with_closers, with_gates
from milkyway.flows.store import Conflict, NotFound, Store
from milkyway.flows.tasks import REGISTRY, TaskContext, TaskRegistry, UnknownTaskError, invoke
from milkyway.kube.cluster_client import ClusterClient
from milkyway.kube.labels import APPLICATION as APPLICATION_LABEL
from milkyway.kube.reachability import ReachabilityLog
from milkyway.model.base import ObjectMeta
from milkyway.model.flow import (
    DONE_LABEL,
    TERMINAL_RUN_PHASES,
    FlowRun,
    FlowRunSpec,
    FlowRunStatus,
    RunRequest,
    Step,
)
from milkyway.security.decision_proof import decision_holds, sign_decision
from milkyway.telemetry.logs import LOG_CONTEXT

log = logging.getLogger("milkyway.flows")


class LostOwnership(Exception):
    """Another engine advanced or claimed the run; this one must stop driving it."""


class _NothingToDo(Exception):
    """The run finished or another engine holds it; nothing was written."""


def machine_for(run: FlowRun) -> Machine:
    status = run.status
    info = RunInfo(
        id=run.metadata.name,
        flow=run.spec.flow,
        target=run.spec.target,
        requested_by=run.spec.requested_by,
    )
    return Machine(status.snapshot, status.root, info)


def progress(status: FlowRunStatus) -> str:
    """``done/total`` over task and approval nodes (fan-out members counted one by one),
    those forgotten once their subflow succeeded included."""
    total = done = status.forgotten
    for node in status.nodes.values():
        if node.kind in ("task", "approval") and node.role != "gate":
            total += 1
            if node.phase in ("Succeeded", "Failed", "Skipped", "Omitted", "Cancelled"):
                done += 1
    return f"{done}/{total}"


UNCLAIMED = (
    "waiting for a flow engine to claim this run: the operator drives FlowRuns in every "
    "namespace; without an operator, run `milkyway flow engine -n {namespace}`"
)
"""The message of a run no engine has claimed yet; the first engine to claim it clears it."""


def new_run(
    catalog: Catalog,
    registry: TaskRegistry | None,
    flow: str,
    params: Mapping[str, Any] | None = None,
    *,
    version: str | None = None,
    target: str = "",
    requested_by: str = "",
    name: str | None = None,
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
    locks: Sequence[str] = (),
    owner_references: Sequence[Mapping[str, Any]] = (),
    gates: Sequence[Step] = (),
    annotations: Mapping[str, str] | None = None,
    closers: Sequence[Step] = (),
) -> FlowRun:
    """A validated, Pending FlowRun with its spec snapshot and hash (not yet stored).

    ``registry``: check every action against it (``None`` when the engine that will run
    the flow knows tasks this process does not, as for the CLI).
    ``locks`` are extra ``limit:key`` locks to hold besides the flow's own mutex and
    concurrency limits (the scheduler uses one to queue runs of a schedule).
    ``owner_references``: the objects the run belongs to (deleted with them).
    ``annotations``: what the run should say about its cause (the request that asked).
    """
    found_version, _ = catalog.get(flow, version)
    spec = FlowRunSpec(
        flow=flow,
        version=found_version,
        params=dict(params or {}),
        target=target,
        requested_by=requested_by,
        locks=list(locks),
        gates=list(gates),
        closers=list(closers),
    )
    run_name = name or f"{flow}-{uuid.uuid4().hex[:8]}"
    status = initial_status(catalog, registry, spec, run_name)
    status.message = UNCLAIMED.format(namespace=namespace or "NAMESPACE")
    return FlowRun(
        metadata=ObjectMeta(
            name=run_name,
            namespace=namespace,
            labels={"milkyway.ebay.com/flow": flow, **(labels or {})},
            annotations=dict(annotations or {}),
            owner_references=[dict(ref) for ref in owner_references],
        ),
        spec=spec,
        status=status,
    )


def initial_status(
    catalog: Catalog, registry: TaskRegistry | None, spec: FlowRunSpec, name: str
) -> FlowRunStatus:
    """The Pending status of a run of ``spec``: its flows' snapshot, resolved parameters
    and the locks it must hold. Raises :class:`FlowError` if the run cannot start."""
    found_version, flow_spec = catalog.get(spec.flow, spec.version)
    snapshot = catalog.snapshot(spec.flow, found_version)
    if spec.gates or spec.closers:
        root = next(iter(snapshot))
        snapshot[root] = with_closers(with_gates(snapshot[root], spec.gates), spec.closers)
    for key, sub in snapshot.items():
        check_flow(key, sub, registry, catalog)
    resolved = validate_params(spec.flow, flow_spec, dict(spec.params))
    info = RunInfo(name, spec.flow, spec.target, spec.requested_by)
    machine = Machine(snapshot, next(iter(snapshot)), info)
    status = machine.initial(resolved)
    status.spec_hash = snapshot_hash(snapshot)
    status.holds = [*lock_keys(flow_spec, resolved, info), *spec.locks]
    status.progress = progress(status)
    return status


def lock_keys(spec: Any, params: dict[str, Any], info: RunInfo) -> list[str]:
    """``limit:key`` of every mutex and concurrency limit the run must hold to start."""
    variables = {"params": params, "run": info.as_vars()}
    keys: list[str] = []
    try:
        if spec.mutex:
            keys.append(f"1:{render(spec.mutex, variables)}")
        for limit in spec.concurrency:
            keys.append(f"{limit.limit}:{render(limit.key, variables)}")
    except ExpressionError as exc:
        raise FlowError(f"mutex/concurrency key: {exc}") from None
    return keys


async def add_request(
    store: Store,
    name: str,
    op: str,
    actor: str,
    *,
    groups: Sequence[str] = (),
    step: str | None = None,
    reason: str = "",
    decision_key: bytes | None = None,
) -> FlowRun:
    """Ask a run for an operation (cancel, approve, …); engines apply it exactly once.

    ``decision_key``: sign an approve/reject as the server (it checked who the actor is)."""
    request = RunRequest(
        id=uuid.uuid4().hex[:12],
        op=op,  # type: ignore[arg-type]
        actor=actor,
        groups=list(groups),
        step=step,
        reason=reason,
    )
    for _ in range(20):
        run = await store.get(name)
        if decision_key is not None and op in ("approve", "reject"):
            request = clone(
                request,
                proof=sign_decision(
                    decision_key,
                    namespace=run.metadata.namespace or "",
                    run=run.metadata.name,
                    uid=run.metadata.uid or "",
                    request_id=request.id,
                    op=op,
                    actor=actor,
                    groups=list(groups),
                    step=step or "",
                    reason=reason,
                ),
            )
        spec = clone(run.spec, requests=[*run.spec.requests, request])
        # A request makes a finished run active again, so engines listing only active
        # runs see it.
        labels = {k: v for k, v in run.metadata.labels.items() if k != DONE_LABEL}
        metadata = clone(run.metadata, labels=labels)
        try:
            return await store.replace(clone(run, spec=spec, metadata=metadata))
        except Conflict:
            await asyncio.sleep(0.01)
    raise Conflict(f"flowrun {name!r} kept changing; try again")


def verify_decision(key: bytes, run: FlowRun, request: RunRequest) -> bool:
    """Whether ``request`` is an approve/reject the server signed for exactly this run."""
    if request.op not in ("approve", "reject"):
        return False
    return decision_holds(
        key,
        request.proof,
        namespace=run.metadata.namespace or "",
        run=run.metadata.name,
        uid=run.metadata.uid or "",
        request_id=request.id,
        op=request.op,
        actor=request.actor,
        groups=request.groups,
        step=request.step or "",
        reason=request.reason,
    )


def request_event(request: RunRequest, now: float, *, proven: bool = False) -> ev.Event:
    actor = request.actor
    if request.op == "cancel":
        return ev.Cancel(now=now, actor=actor, reason=request.reason)
    if request.op == "pause":
        return ev.Pause(now=now, actor=actor)
    if request.op == "resume":
        return ev.Resume(now=now, actor=actor)
    if request.op == "retry":
        return ev.Retry(now=now, actor=actor)
    return ev.Decide(
        now=now,
        actor=actor,
        path=request.step or "",
        approved=request.op == "approve",
        groups=tuple(request.groups),
        reason=request.reason,
        proven=proven,
    )


class Engine:
    """Drives every unfinished run in a store: resumes, advances, and finishes them."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog | None = None,
        *,
        registry: TaskRegistry = REGISTRY,
        clients: Mapping[str, ClusterClient] | None = None,
        engine_id: str | None = None,
        lease_seconds: float = 15.0,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        cluster_wait: float | None = None,
        reachability: ReachabilityLog | None = None,
        decision_key: bytes | None = None,
        accepts: Callable[[FlowRun], bool] | None = None,
        management: Any = None,
    ) -> None:
        self.store = store
        self.accepts: Callable[[FlowRun], bool] = accepts or (lambda run: True)
        """Which runs of the store this engine may drive (all by default): several engines
        sharing a store split its runs with it (e.g. operator replicas by shard)."""
        self.management = management
        """The client of the cluster that holds the runs (the operator's management
        cluster), lent to tasks that read what their planner stored there; ``None``: none."""
        self.reachability = reachability or ReachabilityLog("of the flow store")
        """Where failures to reach the store's cluster are reported (once per change)."""
        self._reports_recovery = reachability is None
        """Only an engine with a log of its own says the cluster answers again: a scan can
        succeed from what the store already holds, which proves nothing to a log shared
        with the operator's informers."""
        self.decision_key = decision_key
        """The key ``milkyway server`` signs decisions with; without it no decision on a
        gate that requires the server's proof counts."""
        self.catalog = catalog or Catalog.from_paths([])
        self.registry = registry
        self.clients: Mapping[str, ClusterClient] = clients if clients is not None else {}
        """Cluster name to client, read live by every task (never copied): the operator
        passes its registry's mapping so clusters registered later are seen at once."""
        self.engine_id = engine_id or f"engine-{uuid.uuid4().hex[:8]}"
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.clock = clock
        self.cluster_wait = cluster_wait
        """Longest wait of a task for a cluster not in ``clients`` (``None``: the step's
        timeouts bound it); see ``TaskContext.wait_for_cluster``."""
        self._drivers: dict[str, _Driver] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self.transitions = 0
        self.lost_runs = 0
        """Runs this engine stopped driving because another engine's write came first."""
        self.claim_conflicts = 0
        """Claims that met a newer run (a stale listing, or a race with another engine)."""
        self._unstarted: dict[str, float] = {}
        """Runs listed without a status, by name: when this engine first saw them so."""
        self._finished_seq: dict[str, int] = {}
        """Runs whose driver finished, by name: the sequence number it wrote last, so a
        listing older than that write is not taken for news. Kept while the run is
        listed; the driver itself (its run, snapshot included) is let go at once, or
        every run ever driven would stay in memory."""

    # --- operations -------------------------------------------------------------------

    async def submit(self, flow: str, params: Mapping[str, Any] | None = None, **kw: Any) -> str:
        run = new_run(self.catalog, self.registry, flow, params, **kw)
        stored = await self.store.create(run)
        if self._supervisor is not None and stored.status.snapshot and self.accepts(stored):
            # Drive it now rather than at the next scan: the scan's listing may be far off.
            self._drive(stored)
        return stored.metadata.name

    async def request(self, name: str, op: str, actor: str, **kw: Any) -> None:
        await add_request(self.store, name, op, actor, **kw)
        driver = self._drivers.get(name)
        if driver is not None:
            driver.poke()
        self._wakeup.set()

    # --- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start(self) -> None:
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name=self.engine_id)

    async def stop(self) -> None:
        """Stop driving runs; in-flight attempts are abandoned (another engine recovers them)."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        for driver in list(self._drivers.values()):
            await driver.stop()
        self._drivers.clear()

    async def let_go(self, which: Callable[[FlowRun], bool], *, hand_over: bool = False) -> int:
        """Stop driving the runs ``which`` selects (their attempts are abandoned, as by
        :meth:`stop`); returns how many. For an engine whose ``accepts`` no longer takes
        them: another engine resumes them once their lease expires, or at once with
        ``hand_over`` (the lease is cleared by a conditional write; a run that changed
        meanwhile is left as it is)."""
        stopped = 0
        for name, driver in list(self._drivers.items()):
            if not which(driver.run):
                continue
            await driver.stop()
            self._drivers.pop(name, None)
            stopped += 1
            if hand_over:
                try:
                    await self._hand_over(driver.run)
                except Exception as exc:
                    # Best effort: without it the next engine waits for the lease to expire.
                    log.info("engine %s: run %s not handed over: %s", self.engine_id, name, exc)
        return stopped

    async def _hand_over(self, run: FlowRun) -> None:
        """Clear this engine's lease on ``run``. The driver's copy may be one write behind
        (stopped while a write was on its way): then the stored run is read again, and
        cleared if it is still leased to this engine, which no longer writes it."""
        for attempt in range(2):
            if run.status.owner != self.engine_id:
                return
            status = clone(run.status, owner="", lease_until=0.0)
            try:
                await self.store.replace_status(clone(run, status=status))
                return
            except Conflict:
                if attempt:
                    raise
            run = await self.store.get(run.metadata.name)

    def wake(self) -> None:
        """Scan now rather than at the next poll (e.g. runs it may now drive)."""
        self._wakeup.set()

    async def wait(self, name: str, within: float = 60.0, interval: float = 0.02) -> FlowRun:
        """Wait until the run is over: terminal, no unprocessed requests, and its locks let
        go (the done label, set after they are released). Polls the store."""
        deadline = time.monotonic() + within
        while True:
            run = await self.store.get(name)
            if (
                run.status.phase in TERMINAL_RUN_PHASES
                and not _pending_requests(run)
                and run.metadata.labels.get(DONE_LABEL) == "true"
            ):
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"flowrun {name} still {run.status.phase} after {within}s")
            await asyncio.sleep(interval)

    async def _supervise(self) -> None:
        while True:
            try:
                await self.scan()
            except Exception as exc:
                if not self.reachability.failed(exc, f"engine {self.engine_id} scanning runs"):
                    log.exception("engine %s: scanning runs failed", self.engine_id)
            else:
                if self._reports_recovery:
                    self.reachability.succeeded()
            self._wakeup.clear()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation
            # that arrives as the event is set, and stop() would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wakeup.wait()

    async def scan(self) -> None:
        """Start a driver for every run this engine may advance and is not driving.

        Lists only the runs not marked done (``Store.list_active``), so finished runs
        cost nothing per poll; a finished run found unmarked (its engine stopped before
        marking it) is marked here.
        """
        now = self.clock()
        listed = [run for run in await self._runs_to_scan() if self.accepts(run)]
        names = {run.metadata.name for run in listed}
        self._finished_seq = {n: s for n, s in self._finished_seq.items() if n in names}
        self._unstarted = {
            run.metadata.name: self._unstarted.get(run.metadata.name, now)
            for run in listed
            if not run.status.snapshot
        }
        for run in listed:
            name = run.metadata.name
            driver = self._drivers.get(name)
            if driver is not None:
                if not driver.done():
                    continue
                self._drivers.pop(name, None)
                if driver.run.status.seq > run.status.seq:
                    # The listing predates what the driver wrote last: decide next scan.
                    continue
            elif self._finished_seq.get(name, -1) > run.status.seq:
                continue
            if not run.status.snapshot:
                if run.status.phase in TERMINAL_RUN_PHASES:
                    await mark_done(self.store, run)
                elif now - self._unstarted[name] >= self.lease_seconds:
                    await self._start_unstarted(run)
                continue
            status = run.status
            if status.owner and status.owner != self.engine_id and status.lease_until > now:
                continue
            if status.phase in TERMINAL_RUN_PHASES and not _pending_requests(run):
                await mark_done(self.store, run)
                continue
            self._drive(run)

    async def _runs_to_scan(self) -> Sequence[FlowRun]:
        return await self.store.list_active()

    async def _start_unstarted(self, run: FlowRun) -> None:
        """Write the first status of a run whose creator stopped before writing it.

        Creating a run takes two writes (the object, then its status); a creator stopped
        between them leaves a run that no engine drives and that blocks whoever waits for
        it to finish. Once this engine has seen it so for ``lease_seconds``, it writes the
        status the creator would have written (from the spec), or a Failed one saying why
        the flow cannot start. The write is conditional, so a late creator or another
        engine doing the same wins cleanly.
        """
        name = run.metadata.name
        try:
            status = initial_status(self.catalog, self.registry, run.spec, name)
        except FlowError as exc:
            status = FlowRunStatus(
                phase="Failed",
                message=f"cannot start: {exc}",
                started_at=self.clock(),
                finished_at=self.clock(),
            )
        try:
            stored = await self.store.replace_status(clone(run, status=status))
        except (Conflict, NotFound):
            return
        self._unstarted.pop(name, None)
        log.warning(
            "flowrun %s had no status (its creator stopped); %s",
            name,
            "starting it" if stored.status.snapshot else stored.status.message,
        )
        if stored.status.snapshot:
            self._drive(stored)

    def _drive(self, run: FlowRun) -> None:
        name = run.metadata.name
        current = self._drivers.get(name)
        if current is not None and not current.done():
            return
        driver = _Driver(self, run)
        self._drivers[name] = driver
        driver.start()

    def _driver_finished(self, driver: _Driver) -> None:
        if self._drivers.get(driver.name) is driver:
            del self._drivers[driver.name]
            self._finished_seq[driver.name] = driver.run.status.seq

    @property
    def driving(self) -> int:
        """How many runs this engine holds a driver for (each finished one is let go)."""
        return len(self._drivers)


async def mark_done(store: Store, run: FlowRun) -> FlowRun | None:
    """Label a finished run so ``list_active`` leaves it out; None if it changed meanwhile."""
    if run.metadata.labels.get(DONE_LABEL) == "true":
        return run
    metadata = clone(run.metadata, labels={**run.metadata.labels, DONE_LABEL: "true"})
    try:
        return await store.replace(clone(run, metadata=metadata))
    except (Conflict, NotFound):
        return None


async def release_stale_holders(store: Store, key: str, asking: str) -> bool:
    """Release ``key`` for holders that are finished or deleted runs; True if any was.

    A run releases its locks after writing its terminal status; an engine stopped
    between the two writes leaves the lock held by a run nobody drives any more. The
    release is conditional like every lock write, so engines racing to do it agree.
    """
    released = False
    for holder in await store.holders(key):
        if holder == asking:
            continue
        try:
            run = await store.get(holder)
        except NotFound:
            stale = True
        else:
            stale = run.status.phase in TERMINAL_RUN_PHASES
        if stale:
            log.info("lock %r: releasing it for %s, which is finished or gone", key, holder)
            await store.release(key, holder)
            released = True
    return released


def _pending_requests(run: FlowRun) -> list[RunRequest]:
    done = set(run.status.processed_requests)
    return [r for r in run.spec.requests if r.id not in done]


class _Driver:
    """Advances one run: the event loop of the run, owned by one engine at a time."""

    def __init__(self, engine: Engine, run: FlowRun) -> None:
        self.engine = engine
        self.run = run
        self.name = run.metadata.name
        self.queue: asyncio.Queue[ev.Event] = asyncio.Queue()
        self.tasks: dict[str, tuple[int, asyncio.Task[None], TaskContext]] = {}
        self.timer: asyncio.Task[None] | None = None
        self.main: asyncio.Task[None] | None = None
        self.machine = machine_for(run)
        self.poked = asyncio.Event()
        self.last_heartbeat: dict[str, float] = {}

    def start(self) -> None:
        self.main = asyncio.create_task(self._main(), name=f"run-{self.name}")
        self.main.add_done_callback(lambda _task: self.engine._driver_finished(self))

    def done(self) -> bool:
        return self.main is None or self.main.done()

    def poke(self) -> None:
        self.poked.set()

    async def stop(self) -> None:
        if self.main is not None:
            self.main.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.main
        self._abandon()

    def _abandon(self) -> None:
        for _, task, ctx in self.tasks.values():
            ctx.cancelled.set()
            task.cancel()
        self.tasks.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # --- main loop --------------------------------------------------------------------

    async def _main(self) -> None:
        fields = {"run": self.name}
        application = self.run.metadata.labels.get(APPLICATION_LABEL)
        if application:
            fields["application"] = f"{self.run.metadata.namespace}/{application}"
        LOG_CONTEXT.set({**LOG_CONTEXT.get(), **fields})
        metrics.FLOWS_RUNNING.inc()
        try:
            await self._drive()
        finally:
            metrics.FLOWS_RUNNING.dec()

    async def _drive(self) -> None:
        try:
            started = await self._claim()
            if started is None:
                await self._begin()
            else:
                for command in started:
                    await self._execute(command)
            while not self._finished():
                event = await self._next_event()
                if event is not None:
                    await self._transition(event, then=self._queued())
            await self._release()
        except _NothingToDo:
            self._abandon()
        except LostOwnership:
            self.engine.lost_runs += 1
            log.info("engine %s: run %s is driven elsewhere", self.engine.engine_id, self.name)
            self._abandon()
        except NotFound:
            self._abandon()
        except asyncio.CancelledError:
            self._abandon()
            raise
        except Exception as exc:
            # A store or API failure: let go; the next scan resumes the run (Recover).
            if not self.engine.reachability.failed(exc, f"driving run {self.name}"):
                log.exception("engine %s: driving run %s failed", self.engine.engine_id, self.name)
            self._abandon()

    def _finished(self) -> bool:
        run = self.run
        return run.status.phase in TERMINAL_RUN_PHASES and not _pending_requests(run)

    async def _claim(self) -> list[ev.Command] | None:
        """Take the run; if it changed since it was read, decide again on a fresh read.

        A run that can start at once (Pending, with no mutex to wait for and no request
        to handle first) is started in the same write as the claim, and the commands of
        its start are returned; otherwise None, and :meth:`_begin` goes on.

        The copy a scan starts from may be older than the stored run (the listing is
        slow, or this engine's previous driver of the run finished meanwhile): that is
        not another engine driving it, so it is not counted as a lost run.
        """
        try:
            claimed, started = self._claimed(self.run)
            self.run = await self.engine.store.replace_status(claimed)
            return self._started(started)
        except Conflict:
            self.engine.claim_conflicts += 1
        fresh = await self.engine.store.get(self.name)
        status = fresh.status
        now = self.engine.clock()
        taken = status.owner and status.owner != self.engine.engine_id and status.lease_until > now
        finished = status.phase in TERMINAL_RUN_PHASES and not _pending_requests(fresh)
        if taken or finished:
            raise _NothingToDo(self.name)
        self.run = fresh
        self.machine = machine_for(fresh)
        claimed, started = self._claimed(fresh)
        try:
            self.run = await self.engine.store.replace_status(claimed)
        except Conflict:
            raise LostOwnership(self.name) from None
        return self._started(started)

    def _claimed(self, run: FlowRun) -> tuple[FlowRun, list[ev.Command] | None]:
        status = clone(
            run.status,
            owner=self.engine.engine_id,
            lease_until=self.engine.clock() + self.engine.lease_seconds,
        )
        if status.message.startswith(UNCLAIMED[:40]):
            status.message = ""
        started = None
        if status.phase == "Pending" and not status.holds and not _pending_requests(run):
            now = self.engine.clock()
            status, started = self.machine.apply(
                status, ev.Start(now=now, actor=self.engine.engine_id)
            )
            status.lease_until = now + self.engine.lease_seconds
        self._set_progress(status)
        return clone(run, status=status), started

    def _started(self, commands: list[ev.Command] | None) -> list[ev.Command] | None:
        if commands is not None:
            self.engine.transitions += 1
        return commands

    async def _begin(self) -> None:
        if _pending_requests(self.run):
            await self._handle_requests()
        status = self.run.status
        now = self.engine.clock()
        if status.phase == "Pending":
            if not await self._admit():
                return
            await self._transition(ev.Start(now=now, actor=self.engine.engine_id))
        elif status.phase not in TERMINAL_RUN_PHASES:
            await self._transition(ev.Recover(now=now, actor=self.engine.engine_id))

    async def _admit(self) -> bool:
        held: list[str] = []
        for key in self.run.status.holds:
            limit, _, name = key.partition(":")
            acquired = await self.engine.store.acquire(name, self.name, int(limit))
            if not acquired and await release_stale_holders(self.engine.store, name, self.name):
                acquired = await self.engine.store.acquire(name, self.name, int(limit))
            if not acquired:
                for taken in held:
                    await self.engine.store.release(taken, self.name)
                message = f"waiting for {name!r} (at most {limit} run(s) at once)"
                if self.run.status.message != message:
                    await self._write(clone(self.run.status, message=message))
                return False
            held.append(name)
        return True

    async def _release(self) -> None:
        for key in self.run.status.holds:
            await self.engine.store.release(key.partition(":")[2], self.name)
        if self.run.status.owner or self.run.status.lease_until:
            await self._write(clone(self.run.status, owner="", lease_until=0.0))
        marked = await mark_done(self.engine.store, self.run)
        if marked is not None:
            self.run = marked
        self.engine._wakeup.set()

    async def _next_event(self) -> ev.Event | None:
        if self.run.status.phase == "Pending":
            # Waiting for a mutex: poll admission.
            await self._wait_or_poll()
            await self._handle_requests()
            await self._renew()
            if self.run.status.phase == "Pending" and await self._admit():
                return ev.Start(now=self.engine.clock(), actor=self.engine.engine_id)
            return None
        if not self.queue.empty():
            return self.queue.get_nowait()
        getter = asyncio.ensure_future(self.queue.get())
        poke = asyncio.ensure_future(self.poked.wait())
        timeout = max(0.05, min(self.engine.poll_interval, self.engine.lease_seconds / 3))
        done, _ = await asyncio.wait({getter, poke}, timeout=timeout, return_when="FIRST_COMPLETED")
        poke.cancel()
        if getter in done:
            return getter.result()
        getter.cancel()
        try:
            await getter
        except asyncio.CancelledError:
            # Only the getter's own cancellation is expected here; a cancellation of this
            # driver arriving at this await must stop it, or ``stop()`` would wait forever.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        self.poked.clear()
        await self._handle_requests()
        await self._renew()
        return None

    async def _wait_or_poll(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.engine.poll_interval):
                await self.poked.wait()
        self.poked.clear()

    async def _handle_requests(self) -> None:
        fresh = await self.engine.store.get(self.name)
        if fresh.status.seq != self.run.status.seq or fresh.status.owner != self.engine.engine_id:
            raise LostOwnership(self.name)
        self.run = fresh
        for request in _pending_requests(self.run):
            proven = self.engine.decision_key is not None and verify_decision(
                self.engine.decision_key, self.run, request
            )
            event = request_event(request, self.engine.clock(), proven=proven)
            await self._transition(event, request=request)

    async def _renew(self) -> None:
        now = self.engine.clock()
        if self.run.status.lease_until - now < self.engine.lease_seconds / 2:
            status = clone(self.run.status, lease_until=now + self.engine.lease_seconds)
            await self._write(status)

    # --- transitions ------------------------------------------------------------------

    def _queued(self) -> list[ev.Event]:
        """Events that arrived while the last one was being written (tasks finishing
        together, heartbeats): applied together, they cost one status write."""
        events = []
        while not self.queue.empty():
            events.append(self.queue.get_nowait())
        return events

    async def _transition(
        self,
        event: ev.Event,
        request: RunRequest | None = None,
        then: Sequence[ev.Event] = (),
    ) -> None:
        """Apply ``event`` (and the events ``then``, in order, until the run is finished)
        with the pure core, write the status once, then start the commands' effects."""
        try:
            status, commands = self.machine.apply(self.run.status, event)
        except InvalidRequest as exc:
            if request is None:
                raise
            status = clone(self.run.status, message=f"{request.op}: {exc}")
            commands = [
                ev.Notice("RequestRejected", f"{request.op} by {request.actor}: {exc}", True)
            ]
        applied = 1
        for later in then:
            if status.phase in TERMINAL_RUN_PHASES:
                break
            status, more = self.machine.apply(status, later)
            commands.extend(more)
            applied += 1
        if request is not None:
            status.processed_requests = [*status.processed_requests, request.id]
        if (
            status.phase in TERMINAL_RUN_PHASES
            and not status.holds
            and not _pending_requests(clone(self.run, status=status))
        ):
            # Finished, with no mutex to give back: the run is let go in this same write.
            status.owner, status.lease_until = "", 0.0
        else:
            status.lease_until = self.engine.clock() + self.engine.lease_seconds
        await self._write(status)
        self.engine.transitions += applied
        for command in commands:
            await self._execute(command)

    def _set_progress(self, status: FlowRunStatus) -> None:
        """Write the progress into a status about to be stored (always when it ends)."""
        if self._wants_progress() or status.phase in TERMINAL_RUN_PHASES:
            status.progress = progress(status)

    async def _write(self, status: FlowRunStatus) -> None:
        self._set_progress(status)
        candidate = clone(self.run, status=status)
        try:
            self.run = await self.engine.store.replace_status(candidate)
            return
        except Conflict:
            pass
        fresh = await self.engine.store.get(self.name)
        # Only a change of the spec (a request) may be merged: if anyone wrote the status
        # since we read it, this engine's decision was based on stale state.
        if fresh.status != self.run.status:
            raise LostOwnership(self.name)
        try:
            self.run = await self.engine.store.replace_status(clone(fresh, status=status))
        except Conflict:
            raise LostOwnership(self.name) from None

    def _wants_progress(self) -> bool:
        return bool(getattr(self.engine.store, "wants_progress", True))

    async def _execute(self, command: ev.Command) -> None:
        if isinstance(command, ev.RunTask):
            self._start_task(command)
        elif isinstance(command, ev.CancelTask):
            entry = self.tasks.get(command.path)
            if entry is not None and entry[0] == command.attempt:
                entry[2].cancelled.set()
                entry[1].cancel()
                del self.tasks[command.path]
        elif isinstance(command, ev.Wake):
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if command.at is not None:
                self.timer = asyncio.create_task(self._sleep_until(command.at))
        elif isinstance(command, ev.Notice):
            if not command.warning and self._quiet():
                return
            with contextlib.suppress(Exception):
                await self.engine.store.record_event(
                    self.run, command.reason, command.message, command.warning
                )
        elif isinstance(command, ev.Finished):
            log.info("run %s finished: %s %s", self.name, command.phase, command.message)
            metrics.observe_finished(
                self.run.spec.flow, command.phase, self.run.metadata.creation_timestamp
            )

    def _quiet(self) -> bool:
        """The run's flow records only its warnings as Events (``spec.events``)."""
        root = self.machine.snapshot.get(self.machine.root)
        return root is not None and root.events == "warnings"

    async def _sleep_until(self, at: float) -> None:
        delay = at - self.engine.clock()
        if delay > 0:
            await asyncio.sleep(delay)
        now = max(at, self.engine.clock())
        self.queue.put_nowait(ev.Tick(now=now, actor=self.engine.engine_id))

    def _start_task(self, command: ev.RunTask) -> None:
        previous = self.tasks.pop(command.path, None)
        if previous is not None:
            previous[2].cancelled.set()
            previous[1].cancel()
        ctx = TaskContext(
            run_id=self.name,
            step=command.path,
            attempt=command.attempt,
            clients=self.engine.clients,
            logger=log.getChild(command.action),
            cluster_wait=self.engine.cluster_wait,
            management=self.engine.management,
        )
        ctx.on_heartbeat = lambda message: self._heartbeat(command, message)
        task = asyncio.create_task(self._run_task(command, ctx))
        self.tasks[command.path] = (command.attempt, task, ctx)

    def _heartbeat(self, command: ev.RunTask, message: str) -> None:
        now = self.engine.clock()
        if now - self.last_heartbeat.get(command.path, 0.0) < 1.0:
            return
        self.last_heartbeat[command.path] = now
        self.queue.put_nowait(
            ev.Heartbeat(now=now, path=command.path, attempt=command.attempt, message=message)
        )

    async def _run_task(self, command: ev.RunTask, ctx: TaskContext) -> None:
        actor = self.engine.engine_id
        try:
            spec = self.engine.registry.get(command.action)
        except UnknownTaskError as exc:
            self.queue.put_nowait(
                ev.TaskFailed(
                    now=self.engine.clock(),
                    actor=actor,
                    path=command.path,
                    attempt=command.attempt,
                    kind="Fatal",
                    message=str(exc).strip('"'),
                )
            )
            return
        started = time.monotonic()
        ok, outputs, kind, message = await invoke(spec, command.params, ctx)
        metrics.TASK_SECONDS.labels(command.action).observe(time.monotonic() - started)
        metrics.TASKS.labels(command.action, "succeeded" if ok else "failed").inc()
        now = self.engine.clock()
        if ok:
            event: ev.Event = ev.TaskSucceeded(
                now=now, actor=actor, path=command.path, attempt=command.attempt, outputs=outputs
            )
        else:
            event = ev.TaskFailed(
                now=now,
                actor=actor,
                path=command.path,
                attempt=command.attempt,
                kind=kind,
                message=message,
            )
        entry = self.tasks.get(command.path)
        if entry is not None and entry[0] == command.attempt:
            del self.tasks[command.path]
        self.queue.put_nowait(event)

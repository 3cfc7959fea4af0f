"""The operator process: ``milkyway operator run``, or :class:`Operator` in-process.

Start-up, in order: connect to the management cluster; install or upgrade the CRDs
(when allowed); make sure the operator's namespace exists; then campaign for the
leader Lease. Only the leader works (a standby only campaigns): it watches
Applications, ComponentTypes, Flows and FlowRuns, connects to every member cluster
through the cluster registry, hosts the flow engines (FlowRuns are stored next to their
Application, one engine per namespace) and runs the reconcile workers over a
de-duplicating work queue keyed by Application.

What wakes an Application up: a change of its spec or metadata (not of its status:
that is our own write), a change of an object it owns in a member cluster (beyond
its heartbeat fields; a burst settles into one reconcile), a change of what the
reconcile reads of one of its FlowRuns (phase and progress, not lease renewals), a
member cluster's reachability changing, a ComponentType or Flow changing, the planner's
own requeue, and a resync a period after its last reconcile (behind every change in the
work queue).

A new leader resumes the flows of the old one: the engine takes over every unfinished
FlowRun once the old engine's run lease has expired (``flow_lease_seconds``).

Usage in-process (the demo and the end-to-end tests)::

    settings = OperatorSettings(namespace="milkyway-system")
    async with Operator(kubeconfig, "mgmt", settings) as operator:
        await operator.wait_until_leading()
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from milkyway.flows.dsl import Catalog
from milkyway.flows.engine import Engine
from milkyway.flows.kube_store import KubeStore
from milkyway.flows.schedule import Scheduler
from milkyway.flows.tasks import REGISTRY, TaskRegistry
from milkyway.kube.clients import client_from_kubeconfig
from milkyway.kube.decision_key import decision_key
from milkyway.kube.errors import TRANSPORT_ERRORS
from milkyway.kube.informer import Informer
from milkyway.kube.labels import APPLICATION as APPLICATION_LABEL
from milkyway.kube.reachability import ReachabilityLog
from milkyway.kube.resources import (
    APPLICATION,
    COMPONENT_TYPE,
    FLOW,
    FlowRunSummary,
    as_dict,
    plain,
)
from milkyway.model.flow import TERMINAL_RUN_PHASES, Flow
from milkyway.model.security_policy import SecurityPolicy
from milkyway.operator import change_records, malloc_trim, metrics, sudo_grants
from milkyway.operator.crd_install import install_crds
from milkyway.operator.disk_watch import DiskWatch
from milkyway.operator.events import EventRecorder
from milkyway.operator.fencing import FencedStore
from milkyway.operator.flows_catalog import build_catalog
from milkyway.operator.gc_pauses import GcPauses, sweep
from milkyway.operator.health.reads import cached_zone_reader
from milkyway.operator.leader import LeaderElectionConfig, LeaderElector
from milkyway.operator.notifying import Notifying
from milkyway.operator.planner.contract import RETRY_FAILED_AFTER, RETRY_FAILED_CAP
from milkyway.operator.reconciler import (
    FLOW_HISTORY_LIMIT,
    Caches,
    Planner,
    Reconciler,
    component_types,
    failure_reason,
)
from milkyway.operator.registry import ClusterRegistry
from milkyway.operator.resync import ResyncSchedule
from milkyway.operator.shard_count import deployment_replicas
from milkyway.operator.sharding import (
    MAX_SHARDS,
    CountSource,
    ShardingConfig,
    ShardLeases,
    shard_of,
)
from milkyway.operator.status_writer import StatusConflict
from milkyway.operator.tasks import member as _member_tasks  # noqa: F401  (registers)
from milkyway.operator.tasks import zone as _zone_tasks  # noqa: F401  (registers)
from milkyway.operator.watched_config import WatchedConfig
from milkyway.operator.workqueue import ShutDown, WorkQueue
from milkyway.telemetry.logs import LOG_CONTEXT

log = logging.getLogger("milkyway.operator")

LEASE_NAME = "milkyway-operator"
MEMBER_SETTLE = 0.05
"""Seconds a change in a member cluster waits before its Application is reconciled, so
the burst one rollout step causes (pod, StatefulSet, claim) becomes one reconcile."""
AppKey = tuple[str, str]


def default_identity() -> str:
    """``host-pid-random``: unique per process, readable in ``kubectl get lease``."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


@dataclass(frozen=True)
class OperatorSettings:
    """Tunables; the defaults suit a real cluster, tests shorten the timings."""

    namespace: str = "milkyway-system"
    """Where the leader Lease lives."""
    workers: int = 4
    """Applications reconciled at once."""
    leader_election: bool = True
    identity: str = field(default_factory=default_identity)
    install_crds: bool = True
    release_lease_on_stop: bool = True
    """Release the Lease when stopped so a standby takes over at once (off: the standby
    waits for the lease to expire, as after a crash)."""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    flow_lease_seconds: float = 15.0
    """How long a FlowRun stays claimed by an engine that stopped renewing it."""
    engine_poll_interval: float = 1.0
    heartbeat_interval: float = 10.0
    """Seconds between heartbeats of each member cluster."""
    heartbeat_timeout: float = 5.0
    unreachable_after: int = 2
    """Heartbeats a reachable member cluster may miss in a row before it counts as
    unreachable (see :class:`~milkyway.operator.registry.ClusterRegistry`)."""
    resync_period: float = 300.0
    """Every Application is reconciled at least this often, whatever happened (counted
    from its last reconcile, give or take ``resync_jitter``). The safety net for a
    missed event: every change the operator acts on wakes its Application up (watches,
    requeues at the time a wait ends); at 1,000 Applications a one-minute period meant
    17 reconciles a second of Applications where nothing had changed."""
    resync_jitter: float = 0.1
    """Up to this fraction of ``resync_period`` is added at random to each resync
    deadline, so Applications reconciled together do not come due together."""
    gc_freeze: bool = True
    """Keep what survived a full garbage collection (the caches) out of the next ones,
    whose pauses would otherwise grow with the number of Applications (see
    :mod:`milkyway.operator.gc_pauses`)."""
    gc_sweep_interval: float = 6 * 3600.0
    """Seconds between full collections of everything, frozen objects included (with
    ``gc_freeze``): they collect reference cycles that died frozen. At 1,000
    Applications one took 5.5 s, stopping everything, and found 15,000 objects after
    15 minutes of provisioning: hence rarely."""
    flow_retry_base: float = RETRY_FAILED_AFTER
    """Seconds before a failed flow of a component is tried again; doubled after each
    further failure in a row (exponential back-off)."""
    flow_retry_cap: float = RETRY_FAILED_CAP
    """The longest wait between two failed attempts of the same flow."""
    flow_history_limit: int = FLOW_HISTORY_LIMIT
    """Finished FlowRuns kept per Application (each component's latest always is)."""
    security_policy: SecurityPolicy = field(default_factory=SecurityPolicy)
    """What ComponentTypes may ask beyond the default pod security (capabilities, mount
    paths, service-account tokens); see :mod:`milkyway.model.security_policy`."""
    retention_interval: float = 60.0
    """Seconds between two prunings of the finished health and notification runs (see
    :mod:`milkyway.operator.retention`)."""
    disk_watch_interval: float = 15.0
    """Seconds between two looks at every member agent's disk report (see
    :mod:`milkyway.operator.disk_watch`)."""
    cluster_wait: float = 300.0
    """How long a flow step waits for a member cluster that is not registered (e.g. just
    after a failover, before every Cluster is loaded) before its attempt fails."""
    shards: int = 0
    """Split the Applications into this many shards, each held by one replica with a
    Lease of its own (see :mod:`milkyway.operator.sharding`); 0: one leader does all."""
    shards_deployment: str | None = None
    """Instead of a fixed ``shards``: follow the replica count of this Deployment in
    ``namespace`` (``--shards auto``; see :mod:`milkyway.operator.shard_count`)."""
    sudo_sweep_interval: float = 30.0
    """Longest time between two looks for expired sudo grants (each expiry also wakes the
    sweep; see :mod:`milkyway.operator.sudo_grants`)."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.resync_period <= 0:
            raise ValueError(
                f"resync_period must be positive, got {self.resync_period}; "
                "use a long period rather than none"
            )
        if self.gc_sweep_interval <= 0:
            raise ValueError(
                f"gc_sweep_interval must be positive, got {self.gc_sweep_interval}; "
                "turn gc_freeze off rather"
            )
        if self.unreachable_after < 1:
            raise ValueError(
                f"unreachable_after must be at least 1 heartbeat, got {self.unreachable_after}"
            )
        if self.retention_interval <= 0:
            raise ValueError(
                f"retention_interval must be positive, got {self.retention_interval}; "
                "a longer interval keeps finished runs longer"
            )
        if not 0 <= self.resync_jitter < 1:
            raise ValueError(f"resync_jitter must be in [0, 1), got {self.resync_jitter}")
        if self.shards < 0 or self.shards > MAX_SHARDS:
            raise ValueError(
                f"shards must be between 0 (no sharding) and {MAX_SHARDS}, got {self.shards}"
            )
        if self.shards and self.shards_deployment:
            raise ValueError(
                f"shards: a fixed count ({self.shards}) and a Deployment to follow "
                f"({self.shards_deployment}) were both given; use one"
            )
        if self.sharded and not self.leader_election:
            raise ValueError(
                "shards need leader election (the leader runs the schedules and the cluster "
                "heartbeats); drop --no-leader-election or --shards"
            )

    @property
    def sharded(self) -> bool:
        return bool(self.shards or self.shards_deployment)


def _default_planner() -> Planner:
    from milkyway.operator.planner import plan

    return plan


def _default_tasks() -> TaskRegistry:
    """The global task registry, where importing :mod:`milkyway.operator.tasks` (above)
    registered Milkyway's lifecycle tasks."""
    return REGISTRY


def _fingerprint(obj: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a change must touch to be worth a reconcile: not our own status writes."""
    metadata = obj.get("metadata") or {}
    return (
        metadata.get("generation"),
        metadata.get("deletionTimestamp"),
        tuple(metadata.get("finalizers") or ()),
        tuple(sorted((metadata.get("labels") or {}).items())),
        tuple(sorted((metadata.get("annotations") or {}).items())),
    )


def run_fingerprint(run: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a reconcile reads of a FlowRun (its flow, labels, creation, phase and progress):
    a status write that changes only the rest (lease renewals, step details) wakes nobody."""
    metadata = run.get("metadata") or {}
    status = run.get("status") or {}
    return (
        (run.get("spec") or {}).get("flow"),
        tuple(sorted((metadata.get("labels") or {}).items())),
        metadata.get("creationTimestamp"),
        metadata.get("deletionTimestamp"),
        status.get("phase") or "Pending",
        status.get("progress"),
    )


class Operator:
    """The operator; see the module docstring. Start with ``async with`` or :meth:`start`."""

    def __init__(
        self,
        kubeconfig: str | Path | Mapping[str, Any],
        context: str | None = None,
        settings: OperatorSettings | None = None,
        *,
        planner: Planner | None = None,
        tasks: TaskRegistry | None = None,
        flow_paths: Iterable[str | Path] = (),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.clock = clock or (lambda: datetime.now(UTC))
        """What the planner and ApprovalPolicies take as now (windows, freezes, retries);
        tests drive it to cross a maintenance window without waiting for one."""
        self.context = context
        self.reachability = ReachabilityLog(context or "management")
        """Failures to reach the management cluster: one WARNING per change."""
        self.settings = settings or OperatorSettings()
        self.planner = planner or _default_planner()
        self.tasks = tasks or _default_tasks()
        self.flow_paths = list(flow_paths)
        self.client: AsyncClient | None = None
        self.leading = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._session: _Session | None = None

    @property
    def identity(self) -> str:
        return self.settings.identity

    @property
    def session(self) -> _Session | None:
        """The working state (``None`` while not leading, unless sharded: then a replica
        works from the start, on the shards it holds)."""
        return self._session

    @property
    def shards(self) -> frozenset[int]:
        """The shards this replica holds now (every Application's when not sharded)."""
        session = self._session
        if session is None:
            return frozenset()
        if session.shard_leases is None:
            return frozenset(range(max(1, self.settings.shards)))
        return session.shard_leases.held

    async def start(self) -> None:
        """Connect, install CRDs, and start campaigning; returns once campaigning."""
        s = self.settings
        self.client = client_from_kubeconfig(self.kubeconfig, self.context)
        log.info("operator %s starting (namespace %s)", s.identity, s.namespace)
        if s.install_crds:
            names = await install_crds(self.client)
            log.info("CRDs installed or upgraded: %d", len(names))
        await self._ensure_namespace(s.namespace)
        self._main = asyncio.create_task(self._campaign(), name=f"operator-{s.identity}")

    async def stop(self) -> None:
        """Stop working and campaigning (the lease is released for a standby)."""
        if self._main is not None:
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
            self._main = None
        if self.client is not None:
            await self.client.close()
            self.client = None
        log.info("operator %s stopped", self.settings.identity)

    async def __aenter__(self) -> Operator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_until_leading(self, within: float = 60.0) -> None:
        async with asyncio.timeout(within):
            await self.leading.wait()

    async def run_forever(self) -> None:
        """Start and run until cancelled or until the operator fails."""
        await self.start()
        assert self._main is not None
        try:
            await self._main
        finally:
            await self.stop()

    async def _ensure_namespace(self, name: str) -> None:
        """Create the namespace only if it is missing: an installed operator (deploy/)
        finds it and may read it, not create namespaces."""
        assert self.client is not None
        try:
            await self.client.get(Namespace, name)
            return
        except ApiError as exc:
            if exc.status.code != 404:
                raise
        try:
            await self.client.create(Namespace(metadata=ObjectMeta(name=name)))
        except ApiError as exc:
            if exc.status.code != 409:
                raise

    def heap_owners(self) -> dict[str, Any]:
        """The large structures of the working state, by name, for the heap report
        (:mod:`milkyway.telemetry.heap`); empty while not working."""
        session = self._session
        return session.heap_owners() if session is not None else {}

    async def _campaign(self) -> None:
        s = self.settings
        assert self.client is not None
        if not s.leader_election:
            await self._lead()
            return
        if s.sharded:
            while True:
                try:
                    await self._work_sharded()
                except Exception:
                    # As a crashed replica restarting: its shards were stopped, work anew.
                    log.exception("operator %s failed; starting its shards again", s.identity)
                    await asyncio.sleep(s.retry_period)
        await self._campaign_for(self._lead)

    async def _campaign_for(self, lead: Callable[[], Awaitable[None]]) -> None:
        s = self.settings
        assert self.client is not None
        config = LeaderElectionConfig(
            name=LEASE_NAME,
            namespace=s.namespace,
            identity=s.identity,
            lease_duration=s.lease_duration,
            renew_deadline=s.renew_deadline,
            retry_period=s.retry_period,
            release_on_cancel=s.release_lease_on_stop,
        )
        elector = LeaderElector(self.client, config, reachability=self.reachability)
        log.info("operator %s campaigning for lease %s/%s", s.identity, s.namespace, LEASE_NAME)
        while True:
            try:
                await elector.run(lead)
                log.warning("operator %s is no longer leader; campaigning again", s.identity)
            except Exception:
                # Like a crashed replica restarting: the lease is free, work starts over.
                log.exception("operator %s failed while leading; campaigning again", s.identity)
                await asyncio.sleep(s.retry_period)

    async def _lead(self) -> None:
        assert self.client is not None
        log.info("operator %s is leader: starting to reconcile", self.settings.identity)
        session = _Session(self)
        self._session = session
        self.leading.set()
        metrics.LEADER.set(1)
        try:
            await session.run()
        finally:
            metrics.LEADER.set(0)
            self.leading.clear()
            self._session = None
            await session.close()

    async def _work_sharded(self) -> None:
        """Sharded: work on the shards held from the start; singletons while leading."""
        s = self.settings
        assert self.client is not None
        count_source = None
        shards = s.shards
        if s.shards_deployment:
            count_source = deployment_replicas(self.client, s.namespace, s.shards_deployment)
            shards = await self._first_count(count_source)
        session = _Session(self, shards=shards, count_source=count_source)
        self._session = session
        assert session.shard_leases is not None
        log.info("operator %s working on %d shards", s.identity, shards)
        tasks = [
            asyncio.create_task(session.run(), name="session"),
            asyncio.create_task(session.shard_leases.run(), name="shard-leases"),
            asyncio.create_task(self._campaign_for(self._lead_singletons), name="leader"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            # The leases first: their shards' work stops before they are released.
            for task in reversed(tasks):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._session = None
            await session.close()

    async def _first_count(self, count_source: CountSource) -> int:
        """The count to start with under ``--shards auto``, read until it can be."""
        s = self.settings
        while True:
            try:
                return await count_source()
            except ApiError as exc:
                log.error(
                    "--shards auto follows the replica count of Deployment %s/%s, which "
                    "cannot be read (%s); create it, let the operator's service account "
                    "get it, or give --shards N",
                    s.namespace,
                    s.shards_deployment,
                    exc.status.message,
                )
            except TRANSPORT_ERRORS as exc:
                self.reachability.failed(exc, "reading the operator Deployment")
            await asyncio.sleep(s.retry_period)

    async def _lead_singletons(self) -> None:
        """While this replica holds the leader Lease: what must run once in the fleet."""
        session = self._session
        assert session is not None
        self.leading.set()
        metrics.LEADER.set(1)
        try:
            await session.lead()
        finally:
            metrics.LEADER.set(0)
            self.leading.clear()


class _Session:
    """Everything the leader runs; built fresh on every acquisition of the lease.

    Sharded, every replica runs one from its start: it reconciles the Applications and
    drives the FlowRuns of the shards it holds, and runs the singletons (schedules, health
    checks, retention, Cluster status) only while it holds the leader Lease.
    """

    def __init__(
        self, operator: Operator, *, shards: int = 0, count_source: CountSource | None = None
    ) -> None:
        assert operator.client is not None
        self.operator = operator
        self.settings = operator.settings
        self.client: AsyncClient = operator.client
        self.leads = not shards
        self._schedulers: dict[str, asyncio.Task[Any]] = {}
        self.shard_leases: ShardLeases | None = None
        if shards:
            s = self.settings
            self.shard_leases = ShardLeases(
                self.client,
                ShardingConfig(
                    shards=shards,
                    namespace=s.namespace,
                    identity=s.identity,
                    lease_duration=s.lease_duration,
                    renew_deadline=s.renew_deadline,
                    retry_period=s.retry_period,
                    release_on_cancel=s.release_lease_on_stop,
                ),
                on_acquired=self._shard_acquired,
                on_lost=self._shard_lost,
                reachability=operator.reachability,
                count_source=count_source,
            )
        self.queue = WorkQueue()
        metrics.QUEUE_DEPTH.set_function(lambda: len(self.queue))
        self.resync = ResyncSchedule(
            self.settings.resync_period, jitter=self.settings.resync_jitter
        )
        self.clients: dict[str, Any] = {}
        self.engines: dict[str, Engine] = {}
        self.decision_key: bytes | None = None
        self.recorder = EventRecorder(self.client)
        self._seen: dict[AppKey, tuple[Any, ...]] = {}
        self._runs: dict[AppKey, dict[str, dict[str, Any]]] = {}
        self._run_phases: dict[tuple[str, str], str] = {}
        self._run_seen: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._settling: set[AppKey] = set()
        self.types_version = 0
        self.applications = Informer(
            self.client,
            APPLICATION,
            on_change=self._app_changed,
            transform=plain,
            reachability=operator.reachability,
        )
        self.component_types = Informer(
            self.client,
            COMPONENT_TYPE,
            on_change=self._types_changed,
            transform=plain,
            reachability=operator.reachability,
        )
        self.flows = Informer(
            self.client,
            FLOW,
            on_change=self._flows_changed,
            transform=plain,
            reachability=operator.reachability,
        )
        # Every FlowRun, not only the operator's own: a run created by hand (``milkyway
        # flow run``) or by a schedule in any namespace gets that namespace's engine.
        self.flow_runs = Informer(
            self.client,
            FlowRunSummary,
            on_change=self._run_changed,
            transform=plain,
            reachability=operator.reachability,
        )
        self.catalog: Catalog = self._build_catalog()
        self.registry = ClusterRegistry(
            self.client,
            self.clients,
            on_member_change=self._member_changed,
            on_cluster_change=self._cluster_changed,
            on_reachability_change=self._reachability_changed,
            heartbeat_interval=self.settings.heartbeat_interval,
            heartbeat_timeout=self.settings.heartbeat_timeout,
            unreachable_after=self.settings.unreachable_after,
            reachability=operator.reachability,
            publishes=lambda: self.leads,
        )
        self.start_config = WatchedConfig(self.client, operator.reachability)
        self.reconciler = Reconciler(
            self.client,
            Caches(
                applications=_AppCache(self.applications.cache),
                component_types=self.component_types.cache,
                runs_of=lambda key: list(self._runs.get(key, {}).values()),
                types_version=lambda: self.types_version,
            ),
            self.registry,
            self,
            operator.planner,
            self.recorder,
            retry_base=self.settings.flow_retry_base,
            retry_cap=self.settings.flow_retry_cap,
            history_limit=self.settings.flow_history_limit,
            security_policy=operator.settings.security_policy,
            clock=operator.clock,
            start_config=self.start_config,
        )
        self.notifying = Notifying(
            self.client,
            self.settings.namespace,
            operator.tasks,
            self.engine_for,
            lambda: _AppCache(self.applications.cache),
            self.reconciler.wisb_of,
            self.recorder,
            runs=self._cached_runs,
            read_zone=cached_zone_reader(self.registry.get),
            retention_interval=self.settings.retention_interval,
            owns=self.owns,
        )
        sudo_grants.register(self.notifying.tasks, self.client, lambda: self.decision_key)
        change_records.register(self.notifying.tasks, self.client)
        self._tasks: list[asyncio.Task[Any]] = []
        self.gc_pauses = GcPauses(observe=metrics.observe_gc_pause)

    async def run(self) -> None:
        # The key milkyway server signs approval decisions with: the engines count a
        # decision on a policy's gate only with its signature.
        self.decision_key = await decision_key(self.client)
        informers = (self.component_types, self.flows, self.flow_runs, self.applications)
        for informer in informers:
            self._spawn(informer.run(), f"informer-{informer._resource.__name__}")
        self._spawn(self.registry.run(), "cluster-registry")
        # Not waited for: until they are synced, flows read their policies live.
        for informer in self.start_config.informers:
            self._spawn(informer.run(), f"informer-start-{informer._resource.__name__}")
        await asyncio.gather(*(i.synced.wait() for i in informers))
        self.catalog = self._build_catalog()
        for namespace in (
            {ns for ns, _ in self.applications.cache}
            | {ns for ns, _ in self.flow_runs.cache}
            | {ns for ns, _ in self.flows.cache}
        ):
            self.engine_for(namespace)
        log.info(
            "caches synced: %d applications, %d component types, %d flows, %d flow runs",
            len(self.applications.cache),
            len(self.component_types.cache),
            len(self.flows.cache),
            len(self.flow_runs.cache),
        )
        self.gc_pauses.freeze_after_full = self.settings.gc_freeze
        self.gc_pauses.install()
        if self.settings.gc_freeze:
            self._spawn(self._sweep(self.settings.gc_sweep_interval), "gc-sweep")
        self._spawn(malloc_trim.trim_periodically(), "malloc-trim")
        for i in range(self.settings.workers):
            self._spawn(self._worker(), f"worker-{i}")
        self._spawn(self.resync.run(self.queue, self._owned_applications), "resync")
        # Each replica checks the health of its own shards' Applications (it holds their
        # renderings); unsharded, that is every Application.
        self._spawn(self.notifying.schedules.run(), "health-schedules")
        if self.shard_leases is None:
            self._spawn(self.notifying.retain(), "run-retention")
            self._spawn(self._disk_watch().run(), "disk-watch")
            self._spawn(self._sudo_expiry(), "sudo-expiry")
        await asyncio.gather(*self._tasks)

    def heap_owners(self) -> dict[str, Any]:
        """See :meth:`Operator.heap_owners`."""
        owners: dict[str, Any] = {
            "Application cache": self.applications.cache,
            "FlowRun cache": self.flow_runs.cache,
            "FlowRuns by Application": self._runs,
            "change fingerprints": (self._seen, self._run_seen, self._run_phases),
            "rendered Applications (WISB)": self.reconciler.wisb_cache,
        }
        by_kind: dict[str, list[Any]] = {}
        for _name, member in sorted(self.registry.members.items()):
            if member.cache is not None:
                for kind, cache in member.cache.caches().items():
                    by_kind.setdefault(kind, []).append(cache)
        for kind, caches in by_kind.items():
            owners[f"member caches: {kind}"] = tuple(caches)
        owners["member caches: the rest"] = tuple(
            m.cache for m in self.registry.members.values() if m.cache is not None
        )
        owners["flow engines"] = self.engines
        return owners

    # --- shards -------------------------------------------------------------------------

    def _owned_applications(self) -> list[AppKey]:
        return [key for key in self.applications.cache if self.owns(key)]

    def owns(self, key: AppKey) -> bool:
        """Whether this replica reconciles ``key`` now (always, unless sharded)."""
        return self.shard_leases is None or self.shard_leases.owns(*key)

    async def _shard_acquired(self, shard: int) -> None:
        for key in list(self.applications.cache):
            if shard_of(*key, self.shard_leases.count) == shard:
                self.queue.add(key)
        for engine in self.engines.values():
            engine.wake()

    async def _shard_lost(self, shard: int, graceful: bool) -> None:
        """Stop driving the shard's runs before its Lease may go to another replica
        (graceful: hand them over, so the next holder need not wait for their leases);
        its Applications are skipped by the workers from now on (``owns``)."""
        assert self.shard_leases is not None
        owns_run = self.shard_leases.owns_run
        for engine in list(self.engines.values()):
            await engine.let_go(lambda run: not owns_run(run), hand_over=graceful)

    async def lead(self) -> None:
        """The singletons, for as long as this replica leads (sharded mode only)."""
        self.leads = True
        try:
            for namespace, engine in list(self.engines.items()):
                self._start_scheduler(engine, namespace)
            await asyncio.gather(
                self.notifying.retain(), self._disk_watch().run(), self._sudo_expiry()
            )
        finally:
            self.leads = False
            for task in self._schedulers.values():
                task.cancel()
            for task in self._schedulers.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._schedulers.clear()

    async def _sweep(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            collected = sweep()
            log.info(
                "full garbage collection: %d objects collected; collections so far: %s",
                collected,
                self.gc_pauses.summary(),
            )

    async def close(self) -> None:
        self.gc_pauses.uninstall()
        if self.settings.gc_freeze:
            gc.unfreeze()
        log.info("garbage collections while leading: %s", self.gc_pauses.summary())
        # Engines first: their tasks must not see member clients disappear under them
        # (an unknown cluster fails a step), they must just stop and be resumed later.
        self.queue.shut_down()
        try:
            for engine in list(self.engines.values()):
                await engine.stop()
            if self._background:
                # Events being recorded: let them land, they are the story of what happened.
                await asyncio.wait(list(self._background), timeout=2.0)
        finally:
            # Also when the close itself is cancelled: nothing the session started may
            # outlive it (member heartbeats and informers would log against gone clusters).
            tasks = [*self._tasks, *self._schedulers.values(), *self._background]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _sudo_expiry(self) -> None:
        """The leader removes sudo grants at their expiry (see :mod:`.sudo_grants`)."""
        await sudo_grants.sweep_expired(self.client, self.settings.sudo_sweep_interval)

    def _disk_watch(self) -> DiskWatch:
        """The leader's watch over the agents' disk alerts (one per replica that leads)."""
        return DiskWatch(self._member_pods, self.settings.disk_watch_interval)

    def _member_pods(self) -> list[tuple[str, AsyncClient, list[dict[str, Any]]]]:
        """Each connected member cluster with the pods Milkyway owns there (cached)."""
        found = []
        for member in list(self.registry.members.values()):
            cache = member.cache
            if member.client is None or cache is None or not member.reachable:
                continue
            pods = [
                obj
                for app in cache.applications()
                for obj in cache.objects(*app)
                if obj.get("kind") == "Pod"
            ]
            found.append((member.name, member.client, pods))
        return found

    def _cached_runs(self) -> Mapping[tuple[str, str], dict[str, Any]]:
        """Every FlowRun the watch holds, by namespace and name (nothing before it has
        listed once)."""
        if not self.flow_runs.synced.is_set():
            return {}
        return self.flow_runs.cache

    def _spawn(self, coroutine: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    def _later(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- engines ------------------------------------------------------------------------

    def engine_for(self, namespace: str) -> Engine:
        """The engine of ``namespace``'s FlowRuns, started on first use."""
        engine = self.engines.get(namespace)
        if engine is None:
            s = self.settings
            store: Any = KubeStore(self.client, namespace)
            accepts = None
            if self.shard_leases is not None:
                accepts = self.shard_leases.owns_run
                store = FencedStore(store, self.shard_leases.may_write_run)
            engine = Engine(
                store,
                self.catalog,
                registry=self.notifying.tasks,
                engine_id=s.identity,
                lease_seconds=s.flow_lease_seconds,
                poll_interval=s.engine_poll_interval,
                clients=self.clients,
                cluster_wait=s.cluster_wait,
                reachability=self.operator.reachability,
                decision_key=self.decision_key,
                accepts=accepts,
                management=self.client,
            )
            engine.start()
            self.engines[namespace] = engine
            if self.leads:
                self._start_scheduler(engine, namespace)
            log.info("flow engine started for namespace %s", namespace)
        return engine

    def _start_scheduler(self, engine: Engine, namespace: str) -> None:
        if namespace in self._schedulers:
            return
        task = asyncio.create_task(self._schedule(engine, namespace), name=f"scheduler-{namespace}")
        self._schedulers[namespace] = task
        if self.shard_leases is None:
            self._tasks.append(task)

    def _flow_names_in(self, namespace: str) -> set[str]:
        return {name for ns, name in self.flows.cache if ns == namespace}

    async def _schedule(self, engine: Engine, namespace: str) -> None:
        """Fire the schedules of ``namespace``'s Flow resources on its engine, for as long
        as this session leads; an invalid schedule is logged, the others keep firing."""
        while True:
            try:
                await Scheduler(engine, lambda: self._flow_names_in(namespace)).run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("scheduler of namespace %s failed, restarting: %s", namespace, exc)
                await asyncio.sleep(self.settings.engine_poll_interval * 5)

    def _build_catalog(self) -> Catalog:
        """The flow catalog from the current ComponentTypes and Flow resources, handed to
        every engine (a running flow keeps the snapshot it started with)."""
        types = component_types(self.component_types.cache.values())
        flows: list[Flow] = []
        for obj in self.flows.cache.values():
            try:
                flows.append(Flow.model_validate(as_dict(obj)))
            except ValueError as exc:
                log.warning(
                    "Flow %s is invalid, ignored: %s", as_dict(obj)["metadata"]["name"], exc
                )
        catalog = build_catalog(types.values(), flows, self.operator.flow_paths)
        for engine in self.engines.values():
            engine.catalog = catalog
        return catalog

    # --- event handlers (synchronous: they only enqueue) ------------------------------

    def _app_changed(self, event: str, obj: Any) -> None:
        data = as_dict(obj)
        key = (data["metadata"].get("namespace") or "", data["metadata"]["name"])
        if event == "DELETED":
            self._seen.pop(key, None)
            self.resync.forget(key)
            self.queue.add(key)
            return
        fingerprint = _fingerprint(data)
        if self._seen.get(key) != fingerprint:
            self._seen[key] = fingerprint
            self.queue.add(key)

    def _member_changed(self, _cluster: str, key: AppKey) -> None:
        if key in self._settling:
            return
        self._settling.add(key)
        asyncio.get_running_loop().call_later(MEMBER_SETTLE, self._settled, key)

    def _settled(self, key: AppKey) -> None:
        self._settling.discard(key)
        self.queue.add(key)

    def _types_changed(self, event: str, obj: Any) -> None:
        self.types_version += 1
        self.catalog = self._build_catalog()
        self._requeue_all()

    def _flows_changed(self, event: str, obj: Any) -> None:
        self.catalog = self._build_catalog()
        namespace = as_dict(obj)["metadata"].get("namespace")
        if namespace and event != "DELETED" and self.flows.synced.is_set():
            self.engine_for(namespace)  # its schedules fire there

    def _cluster_changed(self, name: str) -> None:
        self._requeue_all()

    def _reachability_changed(self, name: str) -> None:
        """Only the Applications with a zone there: on a loaded network clusters may
        flap, and each flap must not cost a reconcile of every Application."""
        for key in self.reconciler.applications_on(name, list(self.applications.cache)):
            self.queue.add(key)

    def _requeue_all(self) -> None:
        for key in list(self.applications.cache):
            self.queue.add(key)

    def _run_changed(self, event: str, obj: Any) -> None:
        data = as_dict(obj)
        metadata = data["metadata"]
        namespace = metadata.get("namespace") or ""
        run = metadata["name"]
        if event != "DELETED" and namespace and self.flow_runs.synced.is_set():
            self.engine_for(namespace)
        app = (metadata.get("labels") or {}).get(APPLICATION_LABEL)
        if not app:
            return
        key = (namespace, app)
        runs = self._runs.setdefault(key, {})
        phase = (data.get("status") or {}).get("phase") or "Pending"
        before = self._run_phases.get((namespace, run))
        fingerprint = run_fingerprint(data)
        if event == "DELETED":
            runs.pop(run, None)
            self._run_phases.pop((namespace, run), None)
            self._run_seen.pop((namespace, run), None)
            changed = True
        else:
            runs[run] = data
            self._run_phases[(namespace, run)] = phase
            changed = self._run_seen.get((namespace, run)) != fingerprint
            self._run_seen[(namespace, run)] = fingerprint
        # Sharded, the notifications and Events of a run are told by its shard's holder.
        told = (
            self.notifying.observe(key, data, event, first_seen=before is None)
            if self.owns(key)
            else None
        )
        if told is not None:
            self._later(told)
        ended = phase in TERMINAL_RUN_PHASES and before is not None and before != phase
        if ended and self.owns(key):
            self._later(self._flow_finished(key, data, phase))
        if changed:
            self.queue.add(key)

    async def _flow_finished(self, key: AppKey, run: dict[str, Any], phase: str) -> None:
        app = self.applications.cache.get(key)
        status = run.get("status") or {}
        flow = (run.get("spec") or {}).get("flow", "")
        message = f"{run['metadata']['name']} ({flow}) {phase.lower()}"
        why = failure_reason(status) if phase != "Succeeded" else status.get("message")
        if why:
            message += f": {why}"
        log.log(
            logging.INFO if phase == "Succeeded" else logging.WARNING,
            "%s/%s: flow %s",
            *key,
            message,
        )
        if app is not None:
            reason = {"Succeeded": "FlowSucceeded", "Failed": "FlowFailed"}.get(
                phase, "FlowCancelled"
            )
            await self.recorder.record(as_dict(app), reason, message, warning=phase != "Succeeded")

    # --- workers ------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            assert isinstance(key, tuple)
            if not self.owns(key):
                # Another replica holds its shard; it gets it back when the shard comes.
                self.queue.forget(key)
                self.queue.done(key)
                continue
            started = time.perf_counter()
            token = LOG_CONTEXT.set({**LOG_CONTEXT.get(), "application": "/".join(key)})
            try:
                self.engine_for(key[0])
                requeue = await self.reconciler.reconcile(key)
            except StatusConflict:
                metrics.RECONCILES.labels("conflict").inc()
                self.queue.add_rate_limited(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                metrics.RECONCILES.labels("error").inc()
                delay = self.queue.add_rate_limited(key)
                if not self.operator.reachability.failed(exc, f"reconciling {key[0]}/{key[1]}"):
                    log.warning(
                        "%s/%s: reconcile failed (retry in %.1fs): %s: %s",
                        *key,
                        delay,
                        type(exc).__name__,
                        exc,
                        exc_info=log.isEnabledFor(logging.DEBUG),
                    )
            else:
                # No reachability report here: a reconcile may succeed from the caches alone,
                # which proves nothing about the cluster (the informers report that).
                metrics.RECONCILES.labels("success").inc()
                self.queue.forget(key)
                if requeue is not None:
                    self.queue.add_after(key, requeue)
                if key in self.applications.cache:
                    self.resync.reconciled(key)
            finally:
                metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
                LOG_CONTEXT.reset(token)
                self.queue.done(key)


class _AppCache(Mapping[AppKey, Any]):
    """The Application informer's cache, as plain dicts."""

    def __init__(self, cache: dict[Any, Any]) -> None:
        self._cache = cache

    def __getitem__(self, key: AppKey) -> Any:
        return as_dict(self._cache[key])

    def __iter__(self) -> Any:
        return iter(self._cache)

    def __len__(self) -> int:
        return len(self._cache)

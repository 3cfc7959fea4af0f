"""Reconcile one Application: read it, compute WISB and WIRI, let the planner choose the
flows that close the gap, start them, and write what was found to the status.

The contract is controller-runtime's: :meth:`Reconciler.reconcile` is given only a key
(``namespace``, ``name``), never an event; it re-reads everything from the informers'
caches, so calling it twice, or late, or for a change it never saw, is always right. It
returns how soon to look again (``None``: only when something changes) and raises to
be retried with backoff.

The steps, in order: finalizer; validate and resolve (types are the built-ins plus the
ComponentType resources; a problem goes to the status with field, value and fix, and
nothing is applied anywhere); map zones to member clusters; render every component in
every zone (WISB); observe it in the member caches (WIRI); ask the pure planner; submit
its flows through the engine; write the status with optimistic concurrency; record an
Event for every flow started. While the Application is being deleted the planner plans
the decommission, and the finalizer goes once no object of it is left in any cluster.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from lightkube import ApiError, AsyncClient
from lightkube.resources.core_v1 import ConfigMap
from lightkube.types import PatchType

from milkyway.components.registry import (
    ComponentTypeRegistry,
    builtin_component_types,
    component_type_from_resource,
)
from milkyway.flows.dsl import FlowError
from milkyway.flows.kube_store import LOCK_KEY_ANNOTATION, LOCK_LABEL
from milkyway.kube.labels import APPLICATION as APPLICATION_LABEL
from milkyway.kube.labels import COMPONENT as COMPONENT_LABEL
from milkyway.kube.labels import ZONE as ZONE_LABEL
from milkyway.kube.resources import APPLICATION, FLOWRUN, as_dict
from milkyway.model.application import Application, ApplicationStatus
from milkyway.model.approval_policy import Hold
from milkyway.model.cluster import Cluster
from milkyway.model.component_type import ComponentType
from milkyway.model.errors import FieldError, ValidationFailed
from milkyway.model.flow import DONE_LABEL, TERMINAL_RUN_PHASES
from milkyway.model.load import application_from_data
from milkyway.model.resolve import ResolvedApplication, resolve
from milkyway.model.security_policy import DEFAULT_POLICY, SecurityPolicy
from milkyway.operator import change_records
from milkyway.operator.approval_gates import (
    CHANGE_LABEL,
    admit,
    approval_condition,
    hold_condition,
    rejected_before,
    rejection_condition,
)
from milkyway.operator.events import EventRecorder
from milkyway.operator.observe import ZoneObservation, observe_zone
from milkyway.operator.planner import FlowRequest, Plan, RunningFlow
from milkyway.operator.planner.contract import (
    RETRY_FAILED_AFTER,
    RETRY_FAILED_CAP,
    backoff_delay,
)
from milkyway.operator.planner.lost import LostMember
from milkyway.operator.planner.status import rfc3339
from milkyway.operator.registry import ClusterRegistry
from milkyway.operator.render_snapshot import externalize, store
from milkyway.operator.size_limit import oversized_spec
from milkyway.operator.status_writer import StatusConflict, StatusWriter, condition
from milkyway.operator.watched_config import WatchedConfig
from milkyway.render.zone import render_zone
from milkyway.security.change_stamp import (
    REQUEST_ID,
    change_digest,
    stamped_request,
    stamped_user,
)

log = logging.getLogger(__name__)

FINALIZER = "milkyway.ebay.com/decommission"
REQUESTER = "milkyway-operator"
OPERATION_LABEL = "milkyway.ebay.com/operation"
ATTEMPT_LABEL = "milkyway.ebay.com/attempt"
"""Which attempt in a row of the same flow for the same component a FlowRun is."""
FLOW_HISTORY_LIMIT = 10
"""Finished FlowRuns kept per Application (besides each component's latest, which the
back-off reads); older ones are deleted. Every FlowRun goes with its Application."""
WAIT_FOR_CLUSTER = 5.0
"""Seconds between looks at an Application waiting for a member cluster."""

AppKey = tuple[str, str]


class Planner(Protocol):
    def __call__(
        self,
        app: Application,
        resolved: ResolvedApplication,
        desired: Mapping[tuple[str, str], list[dict[str, Any]]],
        observed: Mapping[tuple[str, str], ZoneObservation],
        running: Sequence[RunningFlow],
        *,
        now: datetime,
        clusters: Mapping[str, dict[str, Any]],
        deleting: bool = False,
    ) -> Plan: ...


class Engines(Protocol):
    """The engines hosting flows, one per namespace (FlowRuns live next to their app)."""

    def engine_for(self, namespace: str) -> Any: ...

    decision_key: bytes | None
    """The key milkyway server signs with (its stamp of who changed an Application)."""


@dataclass
class Caches:
    """The management cluster's informer caches the reconcile reads."""

    applications: Mapping[Any, Any]
    component_types: Mapping[Any, Any]
    runs_of: Callable[[AppKey], list[dict[str, Any]]]
    types_version: Callable[[], int] = lambda: 0
    """Changes whenever a ComponentType resource changes (the types are cached until then)."""


@dataclass
class ZonePlacement:
    """Which member cluster serves each zone of an Application, and what is missing."""

    clusters: dict[str, str] = field(default_factory=dict)
    """Zone name to Cluster name."""
    missing: list[str] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)


def place_zones(app: Application, clusters: Sequence[Mapping[str, Any]]) -> ZonePlacement:
    """Map every zone of ``app`` to the Cluster serving it (``zones[].cluster`` if set,
    else the one Cluster whose ``spec.zone`` matches)."""
    by_name = {c["metadata"]["name"]: c for c in clusters}
    placement = ZonePlacement()
    for i, component in enumerate(app.spec.components):
        for j, region in enumerate(component.regions):
            for k, zone in enumerate(region.zones):
                path = f"spec.components[{i}].regions[{j}].zones[{k}]"
                if zone.cluster is not None:
                    if zone.cluster in by_name:
                        placement.clusters[zone.name] = zone.cluster
                    else:
                        placement.missing.append(
                            f"zone {zone.name}: Cluster {zone.cluster!r} is not registered"
                        )
                    continue
                serving = sorted(
                    name
                    for name, c in by_name.items()
                    if (c.get("spec") or {}).get("zone") == zone.name
                )
                if len(serving) == 1:
                    placement.clusters.setdefault(zone.name, serving[0])
                elif not serving:
                    placement.missing.append(f"zone {zone.name}: no Cluster serves it")
                elif zone.name not in placement.clusters:
                    placement.errors.append(
                        FieldError(
                            f"{path}.cluster",
                            None,
                            f"Clusters {', '.join(serving)} all serve zone {zone.name!r}",
                            f"set cluster: to one of {', '.join(serving)}",
                        )
                    )
    return placement


@dataclass(frozen=True)
class Wisb:
    """What should be, for one Application: resolved spec, zone placement, rendering."""

    inputs: tuple[Any, ...]
    resolved: ResolvedApplication
    placement: ZonePlacement
    desired: Mapping[tuple[str, str], list[dict[str, Any]]]

    def fresh_desired(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """The rendering, in lists of its own (the objects are shared and never changed)."""
        return {zone: list(objects) for zone, objects in self.desired.items()}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def wisb_inputs(
    obj: Mapping[str, Any], types_version: int, clusters: Sequence[Mapping[str, Any]]
) -> tuple[Any, ...]:
    """Everything resolve, placement and render read: the Application's spec (its
    generation), metadata labels and annotations, the member identities in its status,
    the ComponentTypes, and each Cluster's metadata and spec (not its status, which every
    heartbeat rewrites)."""
    metadata = obj.get("metadata") or {}
    return (
        metadata.get("generation"),
        _canonical(obj.get("spec")),
        _canonical(metadata.get("labels")),
        _canonical(metadata.get("annotations")),
        _canonical((obj.get("status") or {}).get("members")),
        types_version,
        tuple(
            sorted(
                (
                    c["metadata"]["name"],
                    _canonical(c.get("spec")),
                    _canonical(c["metadata"].get("labels")),
                    _canonical(c["metadata"].get("annotations")),
                )
                for c in clusters
            )
        ),
    )


def compute_wisb(
    app: Application,
    types: ComponentTypeRegistry,
    clusters: Sequence[Mapping[str, Any]],
    inputs: tuple[Any, ...] = (),
    policy: SecurityPolicy = DEFAULT_POLICY,
) -> Wisb:
    """Resolve ``app`` (its types within ``policy``), place its zones and render every
    component in every zone."""
    resolved = resolve(app, types, policy=policy)
    placement = place_zones(app, clusters)
    desired: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if not placement.errors:
        by_name = {c["metadata"]["name"]: c for c in clusters}
        models = {z: _cluster_model(by_name[c]) for z, c in placement.clusters.items()}
        for component_name, component in resolved.components.items():
            for zone in component.zones:
                desired[(component_name, zone.name)] = render_zone(
                    resolved, component_name, zone.name, clusters=models
                )
    return Wisb(inputs, resolved, placement, desired)


def component_types(
    resources: Iterable[Any], base: ComponentTypeRegistry | None = None
) -> ComponentTypeRegistry:
    """Built-in types (or ``base``) plus the valid ComponentType resources. An invalid one
    is skipped and logged: it must not fail Applications that do not even use it."""
    valid: list[ComponentType] = []
    for obj in list(resources):
        data = obj if isinstance(obj, dict) else as_dict(obj)
        try:
            valid.append(component_type_from_resource(data))
        except ValidationFailed as exc:
            log.warning("ComponentType %s is invalid, ignored: %s", data["metadata"]["name"], exc)
    return (base if base is not None else builtin_component_types()).with_types(valid)


def running_flows(
    runs: Sequence[Mapping[str, Any]],
    retry_base: float = RETRY_FAILED_AFTER,
    retry_cap: float = RETRY_FAILED_CAP,
) -> list[RunningFlow]:
    """An Application's FlowRuns in the planner's terms: every unfinished one, plus the
    latest finished one of each component (a Failed last attempt shows in the status,
    with its reason and the time of the next attempt: ``retry_base`` seconds, doubled
    after each further failure in a row, at most ``retry_cap``; older history does not)."""
    unfinished: list[RunningFlow] = []
    latest: dict[str | None, tuple[str, RunningFlow]] = {}
    for run in runs:
        metadata = run["metadata"]
        status = run.get("status") or {}
        phase = status.get("phase") or "Pending"
        labels = metadata.get("labels") or {}
        component = labels.get(COMPONENT_LABEL)
        attempt = _int(labels.get(ATTEMPT_LABEL), 1)
        finished = _stamp(status.get("finishedAt"))
        retry_at = None
        if phase == "Failed" and finished is not None:
            delay = backoff_delay(attempt, retry_base, retry_cap)
            # Whole seconds, rounded up: the next attempt never comes before the delay.
            retry_at = rfc3339(datetime.fromtimestamp(math.ceil(finished + delay), UTC))
        flow = RunningFlow(
            name=metadata["name"],
            flow=(run.get("spec") or {}).get("flow", ""),
            component=component,
            phase=phase,
            finished_at=rfc3339(datetime.fromtimestamp(finished, UTC)) if finished else None,
            attempt=attempt,
            retry_at=retry_at,
            message=failure_reason(status) if phase == "Failed" else "",
            operation=labels.get(OPERATION_LABEL, ""),
        )
        if phase not in TERMINAL_RUN_PHASES:
            unfinished.append(flow)
            continue
        created = metadata.get("creationTimestamp") or ""
        if component not in latest or latest[component][0] <= created:
            latest[component] = (created, flow)
    busy = {f.component for f in unfinished}
    finished_runs = [
        f for c, (_, f) in sorted(latest.items(), key=lambda i: str(i[0])) if c not in busy
    ]
    return [*unfinished, *finished_runs]


def failure_reason(status: Mapping[str, Any]) -> str:
    """Why a run failed: the message of its deepest failed step (where the error was
    raised), else the run's own message."""
    failed = [
        (path, node.get("message"))
        for path, node in (status.get("nodes") or {}).items()
        if isinstance(node, Mapping) and node.get("phase") == "Failed" and node.get("message")
    ]
    if failed:
        path, message = max(failed, key=lambda item: len(item[0]))
        return f"step {path}: {message}"[:1000]
    return str(status.get("message") or "")[:1000]


def _stamp(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _int(value: Any, default: int) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default


def invalid_status(errors: Sequence[FieldError], generation: int | None) -> dict[str, Any]:
    """Status of an Application whose spec cannot be resolved: every problem, its fix."""
    message = "; ".join(str(e) for e in errors)
    return {
        "phase": "Failed",
        "observedGeneration": generation,
        "conditions": [
            condition("Ready", False, "InvalidSpec", message, generation),
            condition("Progressing", False, "InvalidSpec", "nothing applied", generation),
        ],
    }


_STATUS_FIELDS = frozenset(
    (f.alias or name) for name, f in ApplicationStatus.model_fields.items()
) | frozenset(
    "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
    for name in ApplicationStatus.model_fields
)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


HEALTH_CONDITIONS = frozenset(("Healthy", "NotificationsValid"))
"""Conditions the health checks and notifications write; the reconcile keeps them."""


def carry_health(current: Mapping[str, Any], status: dict[str, Any]) -> None:
    """Keep in ``status`` what the scheduled health checks wrote into ``current``: the
    report and their conditions (the reconcile writes the whole status)."""
    if current.get("health"):
        status["health"] = current["health"]
    kept = [c for c in current.get("conditions") or [] if c.get("type") in HEALTH_CONDITIONS]
    if kept:
        others = [
            c for c in status.get("conditions") or [] if c.get("type") not in HEALTH_CONDITIONS
        ]
        status["conditions"] = [*others, *kept]


def known_status(status: Mapping[str, Any]) -> dict[str, Any]:
    """Only the fields the CRD keeps: the API server would prune others, and a field that
    never sticks would make every reconcile write the status again."""
    return {k: _clean(v) for k, v in status.items() if k in _STATUS_FIELDS and v is not None}


class Reconciler:
    """Reconciles Applications; see the module docstring for the contract."""

    def __init__(
        self,
        client: AsyncClient,
        caches: Caches,
        registry: ClusterRegistry,
        engines: Engines,
        planner: Planner,
        recorder: EventRecorder,
        *,
        base_types: ComponentTypeRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry_base: float = RETRY_FAILED_AFTER,
        retry_cap: float = RETRY_FAILED_CAP,
        history_limit: int = FLOW_HISTORY_LIMIT,
        security_policy: SecurityPolicy = DEFAULT_POLICY,
        start_config: WatchedConfig | None = None,
    ) -> None:
        self._client = client
        self._start_config = start_config
        """Where the ApprovalPolicies and the ITSM webhook come from (watches, see
        :mod:`milkyway.operator.watched_config`); ``None``: read live at every start."""
        self._policy = security_policy
        self._caches = caches
        self._registry = registry
        self._engines = engines
        self._planner = planner
        self._recorder = recorder
        self._base_types = base_types
        self._clock = clock
        self._retry = (retry_base, retry_cap)
        self._history_limit = history_limit
        self._cancelled: set[str] = set()
        self._status = StatusWriter(client, APPLICATION)
        self._types_cache: tuple[int, ComponentTypeRegistry] | None = None
        self._submitted: dict[AppKey, dict[str, RunningFlow]] = {}
        self._wisb_cache: dict[AppKey, Wisb] = {}
        self._tickets = change_records.TicketCache(client)
        self.flows_started = 0
        self.renders = 0
        """How many times an Application's WISB was computed (not taken from the cache)."""

    @property
    def wisb_cache(self) -> Mapping[AppKey, Wisb]:
        """Every Application's last resolution, placement and rendering."""
        return self._wisb_cache

    def wisb_of(self, key: AppKey) -> Wisb | None:
        """The last resolution, placement and rendering of an Application, if any."""
        return self._wisb_cache.get(key)

    def applications_on(self, cluster: str, keys: Iterable[AppKey]) -> list[AppKey]:
        """Those of ``keys`` with a zone placed on ``cluster`` at their last reconcile, or
        not reconciled yet (their placement is unknown)."""
        found = []
        for key in keys:
            wisb = self._wisb_cache.get(key)
            if wisb is None or cluster in wisb.placement.clusters.values():
                found.append(key)
        return found

    async def reconcile(self, key: AppKey) -> float | None:
        """Close the gap of one Application; returns seconds until the next look."""
        namespace, name = key
        cached = self._caches.applications.get((namespace, name))
        if cached is None:
            self._submitted.pop(key, None)
            self._wisb_cache.pop(key, None)
            return None
        obj = cached if isinstance(cached, dict) else cached.to_dict()
        metadata = obj["metadata"]
        deleting = bool(metadata.get("deletionTimestamp"))
        finalizers = list(metadata.get("finalizers") or [])
        if not deleting and FINALIZER not in finalizers:
            await self._set_finalizers(obj, [*finalizers, FINALIZER])
            return None
        if deleting and FINALIZER not in finalizers:
            return None
        generation = metadata.get("generation")

        known_clusters = self._registry.resources()
        if (too_large := oversized_spec(obj)) is not None:
            return await self._invalid(obj, [too_large], deleting)
        try:
            app = application_from_data({**obj, "status": _planner_status(obj)})
            wisb = self._wisb(key, obj, app, known_clusters)
        except ValidationFailed as exc:
            return await self._invalid(obj, exc.errors, deleting)
        resolved, placement, desired = wisb.resolved, wisb.placement, wisb.fresh_desired()
        if placement.errors:
            return await self._invalid(obj, placement.errors, deleting)
        cluster_resources = {c["metadata"]["name"]: c for c in known_clusters}
        by_zone = {z: cluster_resources[c] for z, c in placement.clusters.items()}
        observed = self._observe(namespace, name, resolved, placement)
        running = self._running(key)
        plan = self._planner(
            app,
            resolved,
            desired,
            observed,
            running,
            now=self._clock(),
            clusters=by_zone,
            deleting=deleting,
        )
        for run_name in plan.cancel:
            await self._cancel(obj, run_name)
        started = []
        held: list[tuple[str, Hold]] = []
        for request in plan.start:
            outcome = await self._start(obj, request)
            if isinstance(outcome, Hold):
                what = request.flow + (f" for {request.component}" if request.component else "")
                held.append((what, outcome))
            else:
                started.append(outcome)
        running_now = [*running, *started]
        await self._write_status(obj, resolved, plan, placement, running_now, generation, held=held)
        await self._record_lost(obj, plan)
        await self._prune_history(key)

        unfinished = [r for r in running_now if r.phase not in TERMINAL_RUN_PHASES]
        if deleting and plan.deleted and not unfinished and self._nothing_left(key):
            await self._release_locks(key)
            await self._set_finalizers(obj, [f for f in finalizers if f != FINALIZER])
            await self._delete_runs(key)
            await self._recorder.record(obj, "Decommissioned", "no object left in any cluster")
            self._submitted.pop(key, None)
            return None
        waits = [plan.requeue_after] if plan.requeue_after is not None else []
        now = self._clock()
        waits += [max(1.0, (h.until - now).total_seconds()) for _, h in held]
        if placement.missing or any(not o.reachable for o in observed.values()):
            waits.append(WAIT_FOR_CLUSTER)
        if deleting and not plan.start and not unfinished:
            waits.append(WAIT_FOR_CLUSTER)
        return min(waits) if waits else None

    # --- steps ------------------------------------------------------------------------

    def _wisb(
        self,
        key: AppKey,
        obj: Mapping[str, Any],
        app: Application,
        clusters: Sequence[Mapping[str, Any]],
    ) -> Wisb:
        """Resolve, place and render, or the last result if nothing they read changed."""
        types = self._types()
        inputs = wisb_inputs(obj, self._caches.types_version(), clusters)
        cached = self._wisb_cache.get(key)
        if cached is not None and cached.inputs == inputs:
            return cached
        wisb = compute_wisb(app, types, clusters, inputs, self._policy)
        self._wisb_cache[key] = wisb
        self.renders += 1
        return wisb

    def _types(self) -> ComponentTypeRegistry:
        """The types, rebuilt only when a ComponentType resource changed."""
        version = self._caches.types_version()
        if self._types_cache is None or self._types_cache[0] != version:
            types = component_types(self._caches.component_types.values(), self._base_types)
            self._types_cache = (version, types)
        return self._types_cache[1]

    def _observe(
        self, namespace: str, name: str, resolved: ResolvedApplication, placement: ZonePlacement
    ) -> dict[tuple[str, str], ZoneObservation]:
        observed: dict[tuple[str, str], ZoneObservation] = {}
        for component_name, component in resolved.components.items():
            for zone in component.zones:
                cluster = placement.clusters.get(zone.name)
                observed[(component_name, zone.name)] = self._observe_zone(
                    namespace, name, component_name, zone.name, cluster
                )
        # Objects of components or zones no longer in the spec: the planner removes them.
        for cluster_name in sorted(set(placement.clusters.values())):
            member = self._registry.get(cluster_name)
            if member is None or member.cache is None:
                continue
            for obj in member.cache.objects(namespace, name):
                labels = obj["metadata"].get("labels") or {}
                pair = (labels.get(COMPONENT_LABEL, ""), labels.get(ZONE_LABEL, ""))
                if pair not in observed and all(pair):
                    observed[pair] = self._observe_zone(namespace, name, *pair, cluster_name)
        return observed

    def _observe_zone(
        self, namespace: str, name: str, component: str, zone: str, cluster: str | None
    ) -> ZoneObservation:
        member = self._registry.get(cluster) if cluster else None
        if member is None or member.cache is None:
            return observe_zone(component, zone, cluster or "", [], reachable=False)
        objects = member.cache.zone_objects(namespace, name, component, zone)
        reachable = member.reachable and member.cache.synced
        return observe_zone(component, zone, member.name, objects, reachable=reachable)

    def _running(self, key: AppKey) -> list[RunningFlow]:
        runs = self._caches.runs_of(key)
        seen = {r["metadata"]["name"] for r in runs}
        pending = self._submitted.get(key, {})
        for run_name in [n for n in pending if n in seen]:
            del pending[run_name]
        return [*running_flows(runs, *self._retry), *pending.values()]

    async def _start(self, obj: Mapping[str, Any], request: FlowRequest) -> RunningFlow | Hold:
        """Start ``request``'s flow behind the gates its ApprovalPolicies ask for, or
        answer the hold (a window, a freeze, a rejection of this very change) that keeps
        it from starting now."""
        namespace = obj["metadata"]["namespace"]
        name = obj["metadata"]["name"]
        labels = {APPLICATION_LABEL: name}
        if request.component:
            labels[COMPONENT_LABEL] = request.component
        if request.operation:
            labels[OPERATION_LABEL] = request.operation
        labels[ATTEMPT_LABEL] = str(request.attempt)
        change = change_digest(obj)
        labels[CHANGE_LABEL] = change
        rejected = rejected_before(
            self._caches.runs_of((namespace, name)),
            flow=request.flow,
            component=request.component,
            change=change,
            now=self._clock(),
        )
        if rejected is not None:
            return rejected
        engine = self._engines.engine_for(namespace)
        try:
            gates: list[Any] = []
            if request.operation:
                admission = await admit(
                    self._client,
                    obj,
                    operation=request.operation,
                    flow=request.flow,
                    component=request.component,
                    types=self._types(),
                    now=self._clock(),
                    policies_of=self._start_config.policies_of if self._start_config else None,
                )
                if admission.hold is not None:
                    return admission.hold
                gates = admission.gates
            closers: list[Any] = []
            if request.operation:
                gates, closers = await self._change_record(obj, request, gates)
            run_name = await engine.submit(
                request.flow,
                await self._small_params(obj, request),
                target=f"{namespace}/{name}",
                requested_by=self._requester(obj),
                namespace=namespace,
                labels=labels,
                locks=[f"1:{request.mutex}"] if request.mutex else [],
                owner_references=_owner(obj),
                gates=gates,
                annotations=self._cause(obj),
                closers=closers,
            )
        except FlowError as exc:
            await self._recorder.record(obj, "FlowRejected", f"{request.flow}: {exc}", warning=True)
            raise
        self.flows_started += 1
        running = RunningFlow(run_name, request.flow, request.component, "Pending")
        self._submitted.setdefault((namespace, name), {})[run_name] = running
        target = f" for {request.component}" if request.component else ""
        log.info(
            "%s/%s: started %s (%s)%s: %s",
            namespace,
            name,
            run_name,
            request.flow,
            target,
            request.reason,
        )
        await self._recorder.record(
            obj, "FlowStarted", f"{run_name} ({request.flow}){target}: {request.reason}"
        )
        return running

    async def _change_record(
        self, obj: Mapping[str, Any], request: FlowRequest, gates: list[Any]
    ) -> tuple[list[Any], list[Any]]:
        """The gates and closers of ``request``'s run with its change record, when an ITSM
        webhook is configured: opened after the approvals, closed however the run ends. A
        configuration that cannot be read stops the flow from starting (FlowError)."""
        try:
            if self._start_config is not None:
                config = await self._start_config.itsm()
            else:
                config = await change_records.read_config(self._client)
        except ValueError as exc:
            raise FlowError(f"{exc}; the flow starts once its change record can be kept") from None
        if config is None:
            return gates, []
        opening, closing = change_records.steps(
            namespace=obj["metadata"]["namespace"],
            application=obj["metadata"]["name"],
            flow=request.flow,
            operation=request.operation,
            component=request.component,
        )
        return [*gates, opening], [closing]

    async def _small_params(self, obj: Mapping[str, Any], request: FlowRequest) -> dict[str, Any]:
        """``request``'s params with its manifests stored in a render snapshot and referred
        to (see :mod:`milkyway.operator.render_snapshot`); inline if it cannot be stored."""
        namespace = obj["metadata"]["namespace"]
        name = obj["metadata"]["name"]
        params, snapshot = externalize(request.params, name, namespace)
        if snapshot is None:
            return params
        owner = [{k: v for k, v in o.items() if k != "controller"} for o in _owner(obj)]
        try:
            await store(self._client, snapshot, name, owner)
        except ApiError as exc:
            log.warning(
                "%s/%s: render snapshot %s not stored (%s); %s carries its manifests inline",
                namespace,
                name,
                snapshot.name,
                exc.status.message,
                request.flow,
            )
            return dict(request.params)
        return params

    def _requester(self, obj: Mapping[str, Any]) -> str:
        """Who asked for what the Application now says: the user ``milkyway server``
        stamped on it while the stamp still matches, else the operator itself."""
        key = getattr(self._engines, "decision_key", None)
        user = stamped_user(key, obj) if key else None
        return user or REQUESTER

    def _cause(self, obj: Mapping[str, Any]) -> dict[str, str]:
        """The server's request id for the run, while the server's stamp vouches for it:
        the audit trail then leads from that request to the run and back."""
        key = getattr(self._engines, "decision_key", None)
        request_id = stamped_request(key, obj) if key else None
        return {REQUEST_ID: request_id} if request_id else {}

    async def _write_status(
        self,
        obj: Mapping[str, Any],
        resolved: ResolvedApplication,
        plan: Plan,
        placement: ZonePlacement,
        running: Sequence[RunningFlow],
        generation: int | None,
        *,
        held: Sequence[tuple[str, Hold]] = (),
    ) -> None:
        status = dict(plan.status)
        status["observedGeneration"] = generation
        status["members"] = {
            name: assignment.model_dump(mode="json", by_alias=True)
            for name, assignment in resolved.members.items()
        }
        active = [r for r in running if r.phase not in TERMINAL_RUN_PHASES]
        current = active[0] if active else None
        status["currentFlow"] = current.name if current else None
        conditions = [dict(c) for c in status.get("conditions") or []]
        conditions = [c for c in conditions if c.get("type") not in ("ClustersReachable",)]
        unreachable = sorted(
            {self._cluster_label(c) for c in placement.clusters.values() if not self._reachable(c)}
        )
        problems = [*placement.missing, *(f"cluster {c} is unreachable" for c in unreachable)]
        conditions.append(
            condition(
                "ClustersReachable",
                not problems,
                "ClusterUnreachable" if problems else "AllReachable",
                "; ".join(problems) + ("; flows that need them wait" if problems else ""),
                generation,
            )
        )
        conditions = [c for c in conditions if c.get("type") != "FlowProgress"]
        conditions.append(self._progress(obj, active, generation))
        pinned = self._pinned_nodes(resolved, placement, generation)
        if pinned is not None:
            conditions.append(pinned)
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        conditions = [
            c for c in conditions if c.get("type") not in ("ApprovalPending", "MaintenanceWindow")
        ]
        conditions.append(approval_condition(self._caches.runs_of(key), generation))
        runs = self._caches.runs_of(key)
        tickets = await self._tickets.of(key, runs)
        conditions.append(change_records.record_condition(runs, generation, tickets=tickets))
        conditions.append(hold_condition(held, generation))
        conditions = [c for c in conditions if c.get("type") != "ApprovalRejected"]
        conditions.append(rejection_condition(held, generation))
        status["conditions"] = conditions
        carry_health(obj.get("status") or {}, status)
        await self._status.write(obj, known_status(status))

    async def _cancel(self, obj: Mapping[str, Any], run_name: str) -> None:
        """Ask the engine to cancel a run (once per run: the engine applies a request
        exactly once, and the run then ends Cancelled)."""
        if run_name in self._cancelled:
            return
        namespace = obj["metadata"]["namespace"]
        await self._engines.engine_for(namespace).request(
            run_name, "cancel", REQUESTER, reason="the Application is being deleted"
        )
        self._cancelled.add(run_name)
        log.info(
            "%s/%s: cancelled %s to decommission", namespace, obj["metadata"]["name"], run_name
        )
        await self._recorder.record(
            obj, "FlowCancelling", f"{run_name}: cancelled, the Application is being deleted"
        )

    async def _release_locks(self, key: AppKey) -> None:
        """The flow locks of a decommissioned Application (ConfigMaps in the management
        cluster that no run holds any more)."""
        namespace, name = key
        pattern = re.compile(rf"^(\d+:)?milkyway/{re.escape(namespace)}/{re.escape(name)}/")
        async for lock in self._client.list(
            ConfigMap, namespace=namespace, labels={LOCK_LABEL: "true"}
        ):
            annotations = (lock.metadata.annotations or {}) if lock.metadata else {}
            holders = json.loads((lock.data or {}).get("holders", "[]") or "[]")
            if pattern.match(annotations.get(LOCK_KEY_ANNOTATION, "")) and not holders:
                await self._delete(ConfigMap, lock.metadata.name, namespace)

    async def _delete_runs(self, key: AppKey) -> None:
        """The FlowRuns of an Application whose finalizer just went. They belong to it
        and go with it anyway; runs from before ownership was recorded would not."""
        for run in self._caches.runs_of(key):
            await self._delete(FLOWRUN, run["metadata"]["name"], key[0])

    async def _delete(self, resource: Any, name: str, namespace: str) -> None:
        try:
            await self._client.delete(resource, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise

    async def _prune_history(self, key: AppKey) -> None:
        """Delete the finished FlowRuns of the Application beyond the history limit,
        oldest first; each component's latest finished run stays (its failure and
        attempt count drive the back-off), and so does every run still releasing its
        locks (not yet labelled done)."""
        finished = [
            r
            for r in self._caches.runs_of(key)
            if ((r.get("status") or {}).get("phase") in TERMINAL_RUN_PHASES)
            and (r["metadata"].get("labels") or {}).get(DONE_LABEL) == "true"
        ]
        if len(finished) <= self._history_limit:
            return
        finished.sort(key=lambda r: r["metadata"].get("creationTimestamp") or "", reverse=True)
        latest: set[str | None] = set()
        keep: set[str] = set()
        for run in finished:
            component = (run["metadata"].get("labels") or {}).get(COMPONENT_LABEL)
            if component not in latest:
                latest.add(component)
                keep.add(run["metadata"]["name"])
        kept = len(keep)
        for run in finished:
            name = run["metadata"]["name"]
            if name in keep:
                continue
            if kept < self._history_limit:
                kept += 1
                continue
            await self._delete(FLOWRUN, name, key[0])

    async def _record_lost(self, obj: Mapping[str, Any], plan: Plan) -> None:
        """A ``MemberLost`` Event for each new decision about a lost member (the same
        decision is in the status: the Event is its record in the Application's story)."""
        before = {
            (e.get("member"), e.get("action"), e.get("at"))
            for e in (obj.get("status") or {}).get("lostMembers") or []
        }
        for entry in plan.status.get("lostMembers") or []:
            if (entry.get("member"), entry.get("action"), entry.get("at")) in before:
                continue
            message = LostMember(**entry).sentence()
            await self._recorder.record(obj, "MemberLost", message, warning=True)

    def _progress(
        self, obj: Mapping[str, Any], active: Sequence[RunningFlow], generation: int | None
    ) -> dict[str, Any]:
        """The ``FlowProgress`` condition: each unfinished flow, its phase and steps done."""
        if not active:
            return condition("FlowProgress", False, "Idle", "no flow running", generation)
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        runs = {r["metadata"]["name"]: r for r in self._caches.runs_of(key)}
        parts = []
        for flow in active:
            status = (runs.get(flow.name) or {}).get("status") or {}
            steps = status.get("progress") or "0/0"
            target = f" for {flow.component}" if flow.component else ""
            parts.append(f"{flow.name} ({flow.flow}){target}: {flow.phase}, {steps} steps")
        return condition("FlowProgress", True, "FlowRunning", "; ".join(parts), generation)

    def _pinned_nodes(
        self, resolved: ResolvedApplication, placement: ZonePlacement, generation: int | None
    ) -> dict[str, Any] | None:
        """``NodesPinned``: every node a zone pins its members to exists in the zone's
        cluster. A missing one is a warning, not an error: its member's pod stays Pending
        until the node joins (a node being replaced) or the spec is fixed."""
        problems: list[str] = []
        checked = False
        for component_name, component in resolved.components.items():
            for zone in component.zones:
                cluster = placement.clusters.get(zone.name)
                member = self._registry.get(cluster) if cluster else None
                if not zone.nodes or member is None or member.cache is None:
                    continue
                if not (member.reachable and member.cache.synced):
                    continue
                checked = True
                known = member.cache.nodes
                missing = [node for node in zone.nodes if node not in known]
                if missing:
                    sample = ", ".join(sorted(known)[:4]) or "none"
                    problems.append(
                        f"{component_name}/{zone.name} pins node(s) {', '.join(missing)} that "
                        f"cluster {cluster} does not have (its nodes include: {sample})"
                    )
        if not checked:
            return None
        if problems:
            message = "; ".join(problems) + "; those members stay Pending: fix the zone's nodes"
            return condition("NodesPinned", False, "UnknownNodes", message, generation)
        return condition(
            "NodesPinned", True, "AllNodesExist", "every pinned node exists", generation
        )

    def _cluster_label(self, name: str) -> str:
        member = self._registry.get(name)
        return f"{name} ({member.message})" if member and member.message else name

    def _reachable(self, name: str) -> bool:
        member = self._registry.get(name)
        return bool(member and member.reachable and member.cache is not None)

    async def _invalid(
        self, obj: Mapping[str, Any], errors: Sequence[FieldError], deleting: bool
    ) -> float | None:
        generation = obj["metadata"].get("generation")
        status = invalid_status(errors, generation)
        before = [
            c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"
        ]
        written = await self._status.write(obj, {**dict(obj.get("status") or {}), **status})
        message = status["conditions"][0]["message"]
        if written is not None and (not before or before[0].get("message") != message):
            log.warning(
                "%s/%s is invalid: %s",
                obj["metadata"]["namespace"],
                obj["metadata"]["name"],
                message,
            )
            await self._recorder.record(obj, "InvalidSpec", message, warning=True)
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if deleting and self._nothing_left(key):
            finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != FINALIZER]
            await self._set_finalizers(obj, finalizers)
        # Not retried on a timer: the edit that fixes the spec re-queues the Application.
        return None

    def _nothing_left(self, key: AppKey) -> bool:
        """True when every member cluster is reachable and holds no object of the app."""
        for member in self._registry.members.values():
            if member.cache is None or not member.reachable or not member.cache.synced:
                return False
            if member.cache.objects(*key):
                return False
        return True

    async def _set_finalizers(self, obj: Mapping[str, Any], finalizers: list[str]) -> None:
        metadata = obj["metadata"]
        patch = {
            "metadata": {
                "finalizers": finalizers,
                "resourceVersion": metadata.get("resourceVersion"),
            }
        }
        try:
            await self._client.patch(
                APPLICATION,
                metadata["name"],
                patch,
                namespace=metadata["namespace"],
                patch_type=PatchType.MERGE,
            )
        except ApiError as exc:
            if exc.status.code == 404:
                return
            if exc.status.code == 409:
                raise StatusConflict(f"{metadata['name']}: {exc.status.message}") from None
            raise


def _planner_status(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Of the stored status, what resolve and the planner read back: the member
    identities to continue, the conditions whose transition times to keep, the lost
    members whose decisions were announced."""
    status = obj.get("status") or {}
    return {k: status[k] for k in ("members", "conditions", "lostMembers") if status.get(k)}


def _owner(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Application as the owner of its FlowRuns: they go when it is deleted."""
    metadata = obj["metadata"]
    if not metadata.get("uid"):
        return []
    return [
        {
            "apiVersion": obj.get("apiVersion") or "milkyway.ebay.com/v1",
            "kind": "Application",
            "name": metadata["name"],
            "uid": metadata["uid"],
            "controller": True,
        }
    ]


def _cluster_model(resource: Mapping[str, Any]) -> Cluster:
    return Cluster.model_validate(
        {
            "apiVersion": resource["apiVersion"],
            "kind": resource["kind"],
            "metadata": resource["metadata"],
            "spec": resource.get("spec") or {},
        }
    )

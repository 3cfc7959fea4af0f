"""The planner: a pure diff of WISB (rendered manifests) and WIRI (observations) into flows.

``plan()`` is called on every reconcile of one Application with everything it needs as
plain data and answers which flows to start now, why nothing else starts, the status to
write and when to look again. It never does I/O and never reads the clock (``now`` is an
argument), so it is deterministic and property-tested.

Rules, per component, in order of precedence (the first that applies wins):

1. **decommission** when the Application is being deleted: components in reverse
   dependency order (a component goes once nothing that uses it has objects left);
2. **provision** when a component has no workload anywhere yet, once every component it
   uses is Ready; zones of a component, and independent components, go in parallel; zones
   missing other objects (a deleted ConfigMap) are re-applied the same way;
3. **replace-member** for a member on a dead node or a failed disk, or named in the
   Application's ``milkyway.ebay.com/replace`` annotation (``pod@RFC3339`` items: a pod
   created before that time is replaced once; timestamps have one-second precision);
4. **remediate** a member that is missing (at once: when its controller brings it back
   first, the flow finds it Ready and does nothing) or not Ready for longer than the
   threshold (60 s, or the Application's ``milkyway.ebay.com/remediate-after``
   annotation, in seconds);
5. **scale-out** (a zone grows or a zone is added: grow first, then reconfigure the
   others) / **scale-in** (highest ordinals or identities first, their volumes deleted);
6. **rolling-upgrade** (a member runs another version) / **config-update** (a member runs
   another restart hash: rolling restart; only hot-reloadable params changed: apply the
   ConfigMap and signal members, no restart).

One mutating flow per component at a time: while a component has an unfinished flow
nothing else starts for it, and whatever changed meanwhile is planned from the new state
when that flow ends (changes are coalesced, never queued one by one). A rolling flow
starts only while the disruption policy leaves room given the members already down.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from milkyway.model.application import Application
from milkyway.model.component_type import DisruptionPolicy
from milkyway.model.flow import TERMINAL_RUN_PHASES
from milkyway.model.resolve import ResolvedApplication, ResolvedComponent
from milkyway.operator.flows_catalog import flow_name
from milkyway.operator.observe import VERSION_LABEL, MemberObservation, ZoneObservation
from milkyway.render.labels import CONFIG_HASH, MEMBER, selector_labels
from milkyway.render.naming import base_name

REMEDIATE_AFTER = 60.0
"""Seconds a member may be missing or not Ready before it is recreated."""
REPLACE_ANNOTATION = "milkyway.ebay.com/replace"
REMEDIATE_AFTER_ANNOTATION = "milkyway.ebay.com/remediate-after"
RECHECK = 5.0
"""Seconds before looking again at a member its controller is expected to recreate."""
WORKLOAD_KINDS = ("StatefulSet", "Deployment", "Pod")
MEMBER_KINDS = ("Deployment", "Pod", "PersistentVolumeClaim", "PersistentVolume")
"""Kinds a per-member pattern renders once per member (labelled with its identity)."""


@dataclass(frozen=True)
class FlowRequest:
    """A flow to start: ``engine.submit(flow, params, ...)``, holding ``mutex``."""

    flow: str
    params: dict
    component: str | None
    reason: str
    mutex: str
    operation: str = ""
    """The lifecycle operation (``provision``, ``config-update``, …) ``flow`` runs."""


@dataclass(frozen=True)
class RunningFlow:
    """A FlowRun of this Application, as the operator last saw it (any phase)."""

    name: str
    flow: str
    component: str | None
    phase: str


@dataclass(frozen=True)
class Plan:
    """What to do now for one Application."""

    start: tuple[FlowRequest, ...]
    """Flows to start now (at most one per component)."""
    waiting: tuple[str, ...]
    """Human-readable reasons nothing else starts."""
    status: dict
    """ApplicationStatus fields (camelCase JSON) to write."""
    requeue_after: float | None
    """Seconds until a time-based rule may fire (a member under the remediation threshold)."""
    deleted: bool = False
    """Deleting, and nothing of the Application is left in any cluster: the finalizer may go."""


def mutex_key(namespace: str, application: str, component: str) -> str:
    """The mutex every mutating flow of one component holds (``spec.mutex`` renders it)."""
    return f"milkyway/{namespace}/{application}/{component}"


def max_unavailable(policy: DisruptionPolicy, size: int) -> int:
    """Members of a component that may be down at once, across all its zones.

    A quorum of ``n`` tolerates ``(n-1)//2``; an ensemble of one or two members tolerates
    none, yet must still be restartable, so it is restarted one member at a time."""
    if policy.kind == "quorum":
        return max(1, (size - 1) // 2) if size <= 2 else (size - 1) // 2
    return policy.max_unavailable


# --------------------------------------------------------------------------- desired state


@dataclass(frozen=True)
class MemberWant:
    """One member the zone should have."""

    name: str
    """Pod name (statefulset, pods) or member Deployment name (deploymentset)."""
    ordinal: int | None
    member_id: int | None
    claim: str | None
    volume: str | None
    manifests: tuple[dict[str, Any], ...]
    """The member's own objects (per-member patterns: Deployment or Pod, claim, local
    volume): created when missing, re-applied when it restarts or is replaced."""


@dataclass(frozen=True)
class ZoneWant:
    """The rendered WISB of one component in one zone, digested for diffing."""

    component: str
    zone: str
    cluster: str
    namespace: str
    workload: str
    size: int
    selector: Mapping[str, str]
    manifests: tuple[dict[str, Any], ...]
    """Every object except the per-member ones."""
    members: tuple[MemberWant, ...]
    pod_hash: str | None
    version: str | None
    config_map_hash: str | None
    keys: frozenset[tuple[str, str, str]]
    """Keys of every desired object, as :func:`milkyway.operator.observe.object_key`."""

    def entry(self, require_updated: bool = False) -> dict[str, Any]:
        """Flow parameters describing this zone."""
        return {
            "zone": self.zone,
            "cluster": self.cluster,
            "namespace": self.namespace,
            "workload": self.workload,
            "selector": dict(self.selector),
            "replicas": self.size,
            "version": self.version or "",
            "configHash": self.pod_hash or "",
            "configMapHash": self.config_map_hash or "",
            "manifests": list(self.manifests),
            "memberManifests": [m for member in self.members for m in member.manifests],
            "requireUpdated": require_updated,
        }


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    metadata = obj.get("metadata") or {}
    return (
        f"{obj.get('apiVersion', '')}/{obj.get('kind', '')}",
        metadata.get("namespace") or "",
        metadata.get("name", ""),
    )


def _cluster_of(zone: str, override: str | None, clusters: Mapping[str, dict]) -> str:
    if override:
        return override
    found = clusters.get(zone)
    if found:
        return str((found.get("metadata") or {}).get("name") or zone)
    return zone


def zone_want(
    resolved: ResolvedApplication,
    component: ResolvedComponent,
    zone: str,
    manifests: Sequence[dict[str, Any]],
    clusters: Mapping[str, dict],
) -> ZoneWant:
    spec = component.zone(zone)
    base = base_name(resolved.name, component.name, zone)
    shared: list[dict[str, Any]] = []
    per_member: dict[int, list[dict[str, Any]]] = {}
    template: Mapping[str, Any] = {}
    config_map_hash = None
    for obj in manifests:
        kind = obj.get("kind")
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if kind == "ConfigMap":
            config_map_hash = ((obj["metadata"].get("annotations")) or {}).get(CONFIG_HASH)
        if kind in ("StatefulSet", "Deployment") and not template:
            template = obj["spec"]["template"]["metadata"]
        if kind == "Pod" and not template:
            template = obj["metadata"]
        member = labels.get(MEMBER)
        if member is not None and kind in MEMBER_KINDS:
            per_member.setdefault(int(member), []).append(obj)
        else:
            shared.append(obj)
    members: list[MemberWant] = []
    if component.workload == "statefulset":
        for ordinal in range(spec.size):
            name = f"{base}-{ordinal}"
            members.append(MemberWant(name, ordinal, None, f"data-{name}", None, ()))
    elif component.workload in ("deploymentset", "pods"):
        for ordinal, member_id in enumerate(spec.member_ids):
            name = f"{base}-m{member_id}"
            volume = f"{resolved.namespace}-{name}" if component.workload == "pods" else None
            members.append(
                MemberWant(
                    name,
                    ordinal,
                    member_id,
                    f"{name}-data",
                    volume,
                    tuple(per_member.get(member_id, ())),
                )
            )
    return ZoneWant(
        component=component.name,
        zone=zone,
        cluster=_cluster_of(zone, spec.cluster, clusters),
        namespace=resolved.namespace,
        workload=component.workload,
        size=spec.size,
        selector=selector_labels(resolved.name, component.name, zone),
        manifests=tuple(shared),
        members=tuple(members),
        pod_hash=(template.get("annotations") or {}).get(CONFIG_HASH),
        version=(template.get("labels") or {}).get(VERSION_LABEL),
        config_map_hash=config_map_hash,
        keys=frozenset(_key(obj) for obj in manifests),
    )


# --------------------------------------------------------------------------- zone diff


@dataclass
class ZoneDiff:
    """How one zone's WIRI differs from its WISB."""

    want: ZoneWant
    obs: ZoneObservation | None
    provisioned: bool = False
    """The zone's workload exists (or, per-member, some member's objects do)."""
    missing_objects: list[str] = field(default_factory=list)
    grow: bool = False
    removed: list[dict[str, Any]] = field(default_factory=list)
    """Members to remove (scale-in): ``{pod, claim, volume, workload}``."""
    down: list[MemberObservation | MemberWant] = field(default_factory=list)
    """Wanted members that are not Ready (or do not exist)."""
    stale: list[MemberObservation] = field(default_factory=list)
    """Ready-or-not existing members running another restart hash or version."""
    upgrade: bool = False
    reload: bool = False
    """The ConfigMap or workload template differs while every member's restart hash and
    version match: a hot reload."""
    broken: list[MemberObservation] = field(default_factory=list)
    """Members on a dead node or failed disk."""
    ready: int = 0
    updated: int = 0


def _member_obs(
    obs: ZoneObservation | None, want: MemberWant, workload: str
) -> MemberObservation | None:
    if obs is None:
        return None
    for member in obs.members:
        if workload == "statefulset" and member.ordinal == want.ordinal:
            return member
        if workload != "statefulset" and member.member_id == want.member_id:
            return member
    return None


def _template_hash(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    kind = obj.get("kind")
    metadata = obj.get("metadata") or {}
    if kind in ("StatefulSet", "Deployment"):
        metadata = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return (
        (metadata.get("annotations") or {}).get(CONFIG_HASH),
        (metadata.get("labels") or {}).get(VERSION_LABEL),
    )


def diff_zone(want: ZoneWant, obs: ZoneObservation | None) -> ZoneDiff:
    result = ZoneDiff(want, obs)
    live = dict(obs.objects) if obs is not None else {}
    workload_keys = [k for k in want.keys if k[0].rsplit("/", 1)[-1] in WORKLOAD_KINDS]
    live_member_ids = {
        int(labels[MEMBER])
        for obj in live.values()
        if (labels := (obj.get("metadata") or {}).get("labels") or {}).get(MEMBER, "").isdigit()
        and obj.get("kind") in (*WORKLOAD_KINDS, "PersistentVolumeClaim")
    }
    if want.workload in ("statefulset", "deployment"):
        result.provisioned = any(k in live for k in workload_keys)
    else:
        result.provisioned = bool(live_member_ids) or (want.size == 0 and _has_shared(want, live))
    for key in sorted(want.keys):
        kind = key[0].rsplit("/", 1)[-1]
        member_kind = kind == "Deployment" and want.workload == "deploymentset"
        if (
            key not in live
            and kind not in ("Pod", "PersistentVolumeClaim", "PersistentVolume")
            and not member_kind
        ):
            result.missing_objects.append(f"{kind}/{key[2]}")
    _diff_size(result, live, live_member_ids)
    _diff_members(result, live)
    return result


def _has_shared(want: ZoneWant, live: Mapping[tuple[str, str, str], Any]) -> bool:
    return any(_key(obj) in live for obj in want.manifests)


def _diff_size(result: ZoneDiff, live: Mapping[tuple[str, str, str], Any], ids: set[int]) -> None:
    want = result.want
    if not result.provisioned:
        return
    if want.workload in ("statefulset", "deployment"):
        workload = next(
            (
                live[k]
                for k in want.keys
                if k in live and k[0].endswith(("/StatefulSet", "/Deployment"))
            ),
            None,
        )
        replicas = int(((workload or {}).get("spec") or {}).get("replicas") or 0)
        if replicas < want.size:
            result.grow = True
        if want.workload == "statefulset":
            base = next(iter(m.name.rsplit("-", 1)[0] for m in want.members), None)
            sts_name = (workload or {}).get("metadata", {}).get("name") or base
            leftover = sorted(
                {
                    int(obj["metadata"]["name"].rsplit("-", 1)[1])
                    for obj in live.values()
                    if obj.get("kind") in ("Pod", "PersistentVolumeClaim")
                    and sts_name
                    and obj["metadata"]["name"].rsplit("-", 1)[0] in (sts_name, f"data-{sts_name}")
                    and obj["metadata"]["name"].rsplit("-", 1)[1].isdigit()
                    and int(obj["metadata"]["name"].rsplit("-", 1)[1]) >= want.size
                }
                | set(range(want.size, max(replicas, want.size)))
            )
            for ordinal in reversed(leftover):
                result.removed.append(
                    {
                        "pod": f"{sts_name}-{ordinal}",
                        "claim": f"data-{sts_name}-{ordinal}",
                        "volume": "",
                        "workload": "",
                        "memberId": -1,
                    }
                )
        elif replicas > want.size:
            result.removed.append(
                {"pod": "", "claim": "", "volume": "", "workload": "", "memberId": -1}
            )
        return
    wanted = {m.member_id for m in want.members}
    if wanted - ids:
        result.grow = True
    prefix = f"{want.members[0].name.rsplit('-m', 1)[0]}-m" if want.members else None
    for member_id in sorted(ids - wanted, reverse=True):
        base = prefix or _base_from_live(live, member_id)
        name = f"{base}{member_id}"
        result.removed.append(
            {
                "pod": name if want.workload == "pods" else "",
                "claim": f"{name}-data",
                "volume": f"{want.namespace}-{name}" if want.workload == "pods" else "",
                "workload": name if want.workload == "deploymentset" else "",
                "memberId": member_id,
            }
        )


def _base_from_live(live: Mapping[tuple[str, str, str], Any], member_id: int) -> str:
    for obj in live.values():
        labels = (obj.get("metadata") or {}).get("labels") or {}
        name = obj["metadata"]["name"]
        if labels.get(MEMBER) == str(member_id) and f"-m{member_id}" in name:
            return name.split(f"-m{member_id}")[0] + "-m"
    return ""


def _diff_members(result: ZoneDiff, live: Mapping[tuple[str, str, str], Any]) -> None:
    want = result.want
    obs = result.obs
    if not result.provisioned:
        result.down = list(want.members)
        return
    if want.workload == "deployment":
        members = [m for m in (obs.members if obs else ()) if m.exists and not m.deleting]
        result.ready = sum(1 for m in members if m.ready)
        result.updated = sum(1 for m in members if m.ready and _current(m, want))
        result.stale = [m for m in members if not _current(m, want)]
        result.down = [m for m in members if not m.ready]
        missing = max(0, want.size - result.ready - len(result.down))
        result.down.extend(
            MemberWant(f"{want.zone}-missing-{i}", None, None, None, None, ())
            for i in range(missing)
        )
    else:
        growing = _growing(want, live)
        for member in want.members:
            seen = _member_obs(obs, member, want.workload)
            if member.name in growing and (seen is None or not seen.exists):
                continue
            if seen is None or not seen.exists or seen.deleting:
                result.down.append(seen if seen is not None else member)
                continue
            if not (seen.volume_ok and seen.node_ok):
                result.broken.append(seen)
            if seen.ready:
                result.ready += 1
                if _current(seen, want):
                    result.updated += 1
            else:
                result.down.append(seen)
            if not _current(seen, want):
                result.stale.append(seen)
    result.upgrade = any(m.version != want.version for m in result.stale)
    if not result.stale:
        result.reload = _needs_reload(want, live)


def _growing(want: ZoneWant, live: Mapping[tuple[str, str, str], Any]) -> set[str]:
    """Wanted members a scale-out has yet to create (not down: they never existed)."""
    if want.workload == "statefulset":
        sts = next(
            (live[k] for k in want.keys if k in live and k[0].endswith("/StatefulSet")), None
        )
        replicas = int(((sts or {}).get("spec") or {}).get("replicas") or 0)
        return {m.name for m in want.members if (m.ordinal or 0) >= replicas}
    ids = {
        (obj.get("metadata") or {}).get("labels", {}).get(MEMBER)
        for obj in live.values()
        if obj.get("kind") in (*WORKLOAD_KINDS, "PersistentVolumeClaim")
    }
    return {m.name for m in want.members if str(m.member_id) not in ids}


def _current(member: MemberObservation, want: ZoneWant) -> bool:
    return member.config_hash == want.pod_hash and member.version == want.version


def _needs_reload(want: ZoneWant, live: Mapping[tuple[str, str, str], Any]) -> bool:
    for obj in want.manifests:
        found = live.get(_key(obj))
        if found is None:
            continue
        if obj.get("kind") == "ConfigMap":
            live_hash = ((found.get("metadata") or {}).get("annotations") or {}).get(CONFIG_HASH)
            if live_hash != want.config_map_hash:
                return True
        if obj.get("kind") in ("StatefulSet", "Deployment") and _template_hash(found) != (
            want.pod_hash,
            want.version,
        ):
            return True
        if obj.get("kind") in ("StatefulSet", "Deployment"):
            replicas = (found.get("spec") or {}).get("replicas")
            if replicas is not None and replicas != want.size:
                return True
    return False


# --------------------------------------------------------------------------- planning


@dataclass
class _Component:
    resolved: ResolvedComponent
    zones: list[ZoneDiff]

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def size(self) -> int:
        return sum(z.want.size for z in self.zones)

    @property
    def down(self) -> int:
        return sum(len(z.down) for z in self.zones)

    @property
    def ready(self) -> bool:
        return all(
            z.provisioned
            and z.ready == z.want.size
            and z.updated == z.want.size
            and not z.missing_objects
            for z in self.zones
        )

    @property
    def budget(self) -> int:
        return max_unavailable(self.resolved.type.spec.disruption, self.size)


class _Planner:
    def __init__(
        self,
        app: Application,
        resolved: ResolvedApplication,
        desired: Mapping[tuple[str, str], list[dict]],
        observed: Mapping[tuple[str, str], ZoneObservation],
        running: Sequence[RunningFlow],
        now: datetime,
        clusters: Mapping[str, dict],
        deleting: bool,
    ) -> None:
        self.app = app
        self.resolved = resolved
        self.observed = observed
        self.running = running
        self.now = now
        self.clusters = clusters
        self.deleting = deleting
        self.start: list[FlowRequest] = []
        self.waiting: list[str] = []
        self.requeue: float | None = None
        self.components: dict[str, _Component] = {}
        for name in resolved.order:
            component = resolved.components[name]
            diffs = []
            for zone in component.zones:
                want = zone_want(
                    resolved, component, zone.name, desired.get((name, zone.name), []), clusters
                )
                diffs.append(diff_zone(want, observed.get((name, zone.name))))
            self.components[name] = _Component(component, diffs)
        annotations = app.metadata.annotations or {}
        self.remediate_after = _seconds(
            annotations.get(REMEDIATE_AFTER_ANNOTATION), REMEDIATE_AFTER
        )
        self.replace_requests = _replace_requests(annotations.get(REPLACE_ANNOTATION, ""))

    # -- helpers ---------------------------------------------------------------------------

    def busy(self, component: str) -> RunningFlow | None:
        for run in self.running:
            if run.component == component and run.phase not in TERMINAL_RUN_PHASES:
                return run
        return None

    def later(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def request(self, component: _Component, operation: str, reason: str, **params: Any) -> None:
        resolved = component.resolved
        app_component = self.app.component(component.name)
        flow = flow_name(
            operation, resolved.type.name, resolved.type.spec.flows, app_component.flows
        )
        base = {
            "application": self.resolved.name,
            "namespace": self.resolved.namespace,
            "component": component.name,
        }
        self.start.append(
            FlowRequest(
                flow=flow,
                params={**base, **params},
                component=component.name,
                reason=reason,
                mutex=mutex_key(self.resolved.namespace, self.resolved.name, component.name),
                operation=operation,
            )
        )

    def gate(self, component: _Component) -> dict[str, Any]:
        """What the live disruption gate re-checks right before each restart."""
        return {
            "maxUnavailable": component.budget,
            "zones": [
                {
                    "cluster": z.want.cluster,
                    "namespace": z.want.namespace,
                    "selector": dict(z.want.selector),
                    "expected": z.want.size,
                }
                for z in component.zones
            ],
        }

    def roll_params(
        self, component: _Component, members: list[dict[str, Any]], targets_down: int = 0
    ) -> dict[str, Any]:
        """Group-strategy params; ``targets_down`` of ``members`` are already down (they
        are what the flow repairs, so they do not use up the budget: when every target is
        down, repairing them one at a time never adds a member down, and the budget is
        widened just enough for the engine to let the repair run)."""
        policy = component.resolved.type.spec.disruption
        budget = component.budget
        already = max(0, component.down - targets_down)
        if policy.kind == "quorum":
            parallelism = 1
        else:
            largest = max((z.want.size for z in component.zones), default=1)
            parallelism = max(1, min(policy.max_unavailable, largest))
        for item in members:
            item["batch"] = "all" if policy.kind == "quorum" else item["zone"]
        return {
            "members": members,
            "parallelism": parallelism,
            "maxDown": budget if targets_down < len(members) else max(budget, already + 1),
            "alreadyDown": already,
            "gate": self.gate(component),
        }

    def member_item(
        self, zone: ZoneDiff, name: str, ordinal: int | None, member_id: int | None
    ) -> dict[str, Any]:
        want = zone.want
        manifests: list[dict[str, Any]] = []
        claim = volume = ""
        for member in want.members:
            if (want.workload == "statefulset" and member.ordinal == ordinal) or (
                want.workload != "statefulset"
                and member.member_id == member_id
                and member_id is not None
            ):
                manifests = list(member.manifests)
                claim = member.claim or ""
                volume = member.volume or ""
        return {
            "name": name,
            "zone": want.zone,
            "cluster": want.cluster,
            "namespace": want.namespace,
            "workload": want.workload,
            "selector": dict(want.selector),
            "configHash": want.pod_hash or "",
            "version": want.version or "",
            "memberId": member_id if member_id is not None else -1,
            "claim": claim,
            "volume": volume,
            "manifests": manifests,
        }

    def stale_members(self, component: _Component) -> list[dict[str, Any]]:
        """Members to restart, zone by zone, highest ordinal first within a zone (the
        simulator exposes no leader, so followers-first degrades to a stable order)."""
        items = []
        for zone in component.zones:
            if zone.want.workload == "deployment":
                continue
            for member in sorted(
                zone.stale,
                key=lambda m: -(m.ordinal if m.ordinal is not None else (m.member_id or 0)),
            ):
                items.append(self.member_item(zone, member.name, member.ordinal, member.member_id))
        return items

    # -- rules -----------------------------------------------------------------------------

    def orphans(self) -> dict[str, list[ZoneObservation]]:
        """Observed zones no longer in the spec (a zone or a whole component removed)."""
        wanted = {(name, z.want.zone) for name, c in self.components.items() for z in c.zones}
        found: dict[str, list[ZoneObservation]] = {}
        for key in sorted(self.observed):
            obs = self.observed[key]
            if key not in wanted and _owns_objects(obs):
                found.setdefault(key[0], []).append(obs)
        return found

    def remove_orphans(self, component: str, zones: list[ZoneObservation]) -> bool:
        """Start decommissioning ``zones`` of ``component``; False if something blocks it."""
        busy = self.busy(component)
        if busy is not None:
            self.waiting.append(f"{component}: flow {busy.name} ({busy.flow}) is {busy.phase}")
            return False
        unreachable = sorted(z.cluster for z in zones if not z.reachable)
        if unreachable:
            self.waiting.append(
                f"{component}: cluster {', '.join(unreachable)} unreachable; waiting"
            )
            return False
        existing = self.components.get(component)
        type_name = existing.resolved.type.name if existing else ""
        type_flows = existing.resolved.type.spec.flows if existing else {}
        app_flows = self.app.component(component).flows if existing else {}
        entries = [
            {
                "zone": z.zone,
                "cluster": z.cluster,
                "namespace": self.resolved.namespace,
                "selector": selector_labels(self.resolved.name, component, z.zone),
            }
            for z in zones
        ]
        what = "component" if existing is None else "zone(s)"
        self.start.append(
            FlowRequest(
                flow=flow_name("decommission", type_name, type_flows, app_flows),
                params={
                    "application": self.resolved.name,
                    "namespace": self.resolved.namespace,
                    "component": component,
                    "zones": entries,
                },
                component=component,
                reason=f"{what} removed from the spec: delete {component} in "
                f"{', '.join(z.zone for z in zones)}",
                mutex=mutex_key(self.resolved.namespace, self.resolved.name, component),
                operation="decommission",
            )
        )
        return True

    def run(self) -> None:
        orphans = self.orphans()
        for name, zones in orphans.items():
            self.remove_orphans(name, zones)
        if self.deleting:
            self.decommission()
            return
        for component in self.components.values():
            if component.name in orphans:
                continue
            busy = self.busy(component.name)
            if busy is not None:
                self.waiting.append(
                    f"{component.name}: flow {busy.name} ({busy.flow}) is {busy.phase}"
                )
                continue
            unreachable = sorted(
                z.want.cluster for z in component.zones if z.obs is not None and not z.obs.reachable
            )
            if unreachable:
                self.waiting.append(
                    f"{component.name}: cluster {', '.join(unreachable)} unreachable; waiting"
                )
                continue
            self.plan_component(component)

    def plan_component(self, c: _Component) -> None:
        zones = c.zones
        if not any(z.provisioned for z in zones) or any(
            z.missing_objects for z in zones if z.provisioned
        ):
            self.provision(c)
            return
        if self.replace(c):
            return
        if self.remediate(c):
            return
        if any(z.removed for z in zones):
            self.scale_in(c)
            return
        if any(z.grow or not z.provisioned for z in zones):
            self.scale_out(c)
            return
        if any(z.stale for z in zones):
            self.rolling(c)
            return
        if any(z.reload for z in zones):
            self.request(
                c,
                "config-update",
                "only hot-reloadable params changed: apply the config and signal members",
                zones=[z.want.entry() for z in zones],
                restart=False,
                **self.roll_params(c, []),
            )

    def provision(self, c: _Component) -> None:
        pending = [
            dep
            for dep in sorted(set(c.resolved.bindings.values()))
            if dep in self.components and not self.components[dep].ready
        ]
        if pending:
            self.waiting.append(f"{c.name}: waiting for {', '.join(pending)} to be Ready")
            return
        fresh = [z for z in c.zones if not z.provisioned]
        repair = [z for z in c.zones if z.provisioned and z.missing_objects]
        if fresh and not repair and len(fresh) == len(c.zones):
            reason = f"provision {c.name} in {', '.join(z.want.zone for z in fresh)}"
        else:
            missing = [f"{z.want.zone}: {', '.join(z.missing_objects)}" for z in repair]
            reason = (
                f"re-apply missing objects ({'; '.join(missing)})"
                if missing
                else f"provision {c.name}"
            )
        self.request(
            c,
            "provision",
            reason,
            zones=[z.want.entry(require_updated=not z.provisioned) for z in (*fresh, *repair)],
        )

    def replace(self, c: _Component) -> bool:
        targets: list[tuple[ZoneDiff, MemberObservation, str]] = []
        for zone in c.zones:
            if zone.want.workload == "deployment":
                continue
            for member in zone.broken:
                why = (
                    "failed disk"
                    if not member.volume_ok
                    else f"dead node {member.node or ''}".strip()
                )
                targets.append((zone, member, why))
            for member in (m for m in (zone.obs.members if zone.obs else ()) if m.exists):
                requested = self.replace_requests.get(member.name)
                if (
                    requested is not None
                    and (member.created or "") < requested
                    and all(t[1].name != member.name for t in targets)
                ):
                    targets.append((zone, member, "requested"))
        if not targets:
            return False
        items = [self.member_item(z, m.name, m.ordinal, m.member_id) for z, m, _ in targets]
        targets_down = sum(1 for _, m, _ in targets if not m.ready or m.deleting)
        if targets_down < len(targets) and c.budget - (c.down - targets_down) < 1:
            self.waiting.append(
                f"{c.name}: {c.down} member(s) down, the disruption policy allows {c.budget}; "
                "replacing a healthy member waits"
            )
            return False
        why = ", ".join(f"{m.name} ({reason})" for _, m, reason in targets)
        self.request(
            c, "replace-member", f"replace {why}", **self.roll_params(c, items, targets_down)
        )
        return True

    def remediate(self, c: _Component) -> bool:
        overdue: list[tuple[ZoneDiff, Any]] = []
        for zone in c.zones:
            if not zone.provisioned:
                continue
            for member in zone.down:
                if isinstance(member, MemberWant) and member.ordinal is None:
                    self.later(RECHECK)
                    self.waiting.append(f"{c.name}: {zone.want.zone} waits for its controller")
                    continue
                if isinstance(member, MemberWant) or not member.exists:
                    overdue.append((zone, member))
                    continue
                since = _since(member)
                waited = (self.now - since).total_seconds() if since else math.inf
                if waited >= self.remediate_after:
                    overdue.append((zone, member))
                else:
                    self.later(self.remediate_after - waited)
                    self.waiting.append(
                        f"{c.name}: {member.name} not Ready for {waited:.0f}s "
                        f"(remediation after {self.remediate_after:g}s)"
                    )
        if not overdue:
            return False
        items = [
            self.member_item(z, m.name, m.ordinal, m.member_id)
            for z, m in overdue
            if z.want.workload != "deployment"
        ]
        names = ", ".join(m.name for _, m in overdue)
        self.request(
            c,
            "remediate",
            f"recreate {names}: missing or not Ready for over {self.remediate_after:g}s",
            zones=[z.want.entry() for z in c.zones if z.provisioned],
            **self.roll_params(c, items, len(items)),
        )
        return True

    def scale_in(self, c: _Component) -> None:
        if self.no_room(c, "scale-in"):
            return
        shrinking = [z for z in c.zones if z.removed]
        names = [r["pod"] or r["workload"] or r["claim"] for z in shrinking for r in z.removed]
        self.request(
            c,
            "scale-in",
            f"scale in {c.name}: remove {', '.join(n for n in names if n) or 'surplus members'}",
            shrink=[{**z.want.entry(), "removed": z.removed} for z in shrinking],
            zones=[z.want.entry() for z in c.zones if not z.removed],
            **self.rolling_guard(c),
        )

    def scale_out(self, c: _Component) -> None:
        if self.no_room(c, "scale-out"):
            return
        growing = [z for z in c.zones if z.grow or not z.provisioned]
        self.request(
            c,
            "scale-out",
            f"scale out {c.name} in {', '.join(z.want.zone for z in growing)}",
            grow=[z.want.entry() for z in growing],
            zones=[z.want.entry() for z in c.zones],
            **self.rolling_guard(c),
        )

    def rolling_guard(self, c: _Component) -> dict[str, Any]:
        return self.roll_params(c, self.stale_members(c))

    def no_room(self, c: _Component, what: str) -> bool:
        """True (and a waiting reason) when restarting one more member would exceed the
        disruption policy given the members already down."""
        if c.budget - c.down >= 1 or not self.stale_members(c):
            return False
        self.waiting.append(
            f"{c.name}: {c.down} member(s) down, the disruption policy allows {c.budget}; "
            f"the {what} waits"
        )
        return True

    def rolling(self, c: _Component) -> None:
        room = c.budget - c.down
        if room <= 0:
            self.waiting.append(
                f"{c.name}: {c.down} member(s) down, the disruption policy allows "
                f"{c.budget}; the rolling update waits"
            )
            return
        upgrade = any(z.upgrade for z in c.zones)
        operation = "rolling-upgrade" if upgrade else "config-update"
        versions = sorted({z.want.version or "" for z in c.zones if z.upgrade})
        reason = (
            f"upgrade {c.name} to {', '.join(versions)}"
            if upgrade
            else f"config of {c.name} changed: rolling restart"
        )
        extra = {} if upgrade else {"restart": True}
        self.request(
            c,
            operation,
            reason,
            zones=[z.want.entry(require_updated=True) for z in c.zones],
            **extra,
            **self.roll_params(c, self.stale_members(c)),
        )

    def decommission(self) -> None:
        order = list(self.resolved.order)
        users: dict[str, set[str]] = {name: set() for name in order}
        for name in order:
            for dep in self.resolved.components[name].bindings.values():
                users.setdefault(dep, set()).add(name)
        for name in reversed(order):
            c = self.components[name]
            if not any(_owns_objects(z.obs) for z in c.zones):
                continue
            busy = self.busy(name)
            if busy is not None:
                self.waiting.append(f"{name}: flow {busy.name} ({busy.flow}) is {busy.phase}")
                continue
            remaining = sorted(
                u
                for u in users.get(name, ())
                if any(_owns_objects(z.obs) for z in self.components[u].zones)
            )
            if remaining:
                self.waiting.append(f"{name}: decommission waits for {', '.join(remaining)}")
                continue
            unreachable = sorted(
                z.want.cluster for z in c.zones if z.obs is not None and not z.obs.reachable
            )
            if unreachable:
                self.waiting.append(
                    f"{name}: cluster {', '.join(unreachable)} unreachable; waiting"
                )
                continue
            self.request(
                c,
                "decommission",
                f"decommission {name}",
                zones=[z.want.entry() for z in c.zones],
            )

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        components: dict[str, Any] = {}
        for name, c in self.components.items():
            zones = {}
            for z in c.zones:
                obs_members = [m for m in (z.obs.members if z.obs else ()) if m.exists and m.ready]
                versions = {m.version for m in obs_members}
                hashes = {m.config_hash for m in obs_members}
                zone_spec = c.resolved.zone(z.want.zone)
                entry: dict[str, Any] = {
                    "desired": z.want.size,
                    "ready": z.ready,
                    "updated": z.updated,
                }
                if len(versions) == 1:
                    only = next(iter(versions))
                    entry["version"] = zone_spec.version if only == z.want.version else only
                if len(hashes) == 1 and next(iter(hashes)):
                    entry["configHash"] = next(iter(hashes))
                zones[z.want.zone] = entry
            components[name] = {"zones": zones}
        active = [r for r in self.running if r.phase not in TERMINAL_RUN_PHASES]
        failed = [r for r in self.running if r.phase == "Failed"]
        unreachable = sorted(
            {
                z.want.cluster
                for c in self.components.values()
                for z in c.zones
                if z.obs is not None and not z.obs.reachable
            }
        )
        all_ready = all(c.ready for c in self.components.values())
        down = {
            name: c.down
            for name, c in self.components.items()
            if c.down and any(z.provisioned for z in c.zones)
        }
        provisioning = any(
            not any(z.provisioned for z in c.zones) for c in self.components.values()
        ) or any(r.operation == "provision" for r in self.start)
        progressing = bool(active or self.start)
        if self.deleting:
            phase = "Deleting"
        elif all_ready and not progressing:
            phase = "Running"
        elif provisioning and (progressing or self.waiting):
            phase = "Provisioning"
        elif failed and not progressing:
            phase = "Failed"
        elif progressing:
            phase = "Updating"
        elif down or unreachable:
            phase = "Degraded"
        else:
            phase = "Pending"
        flows = [r.name for r in active] + [f"{r.flow} (starting)" for r in self.start]
        degraded_reason, degraded_message = "AsExpected", "all members are Ready"
        if unreachable:
            degraded_reason = "ClusterUnreachable"
            degraded_message = f"unreachable: {', '.join(unreachable)}"
        elif down:
            degraded_reason = "MembersUnavailable"
            degraded_message = "; ".join(
                f"{n}: {k} member(s) not Ready" for n, k in sorted(down.items())
            )
        elif failed:
            degraded_reason = "FlowFailed"
            degraded_message = f"failed: {', '.join(r.name for r in failed)}"
        conditions = [
            self.condition(
                "Ready",
                all_ready and not self.deleting,
                "AllComponentsReady" if all_ready else "ComponentsNotReady",
                "every member is Ready and up to date"
                if all_ready
                else "not Ready: "
                + ", ".join(n for n, c in self.components.items() if not c.ready),
            ),
            self.condition(
                "Progressing",
                progressing,
                "FlowRunning" if progressing else "Idle",
                ", ".join(flows) if flows else ("; ".join(self.waiting) or "nothing to do"),
            ),
            self.condition(
                "Degraded",
                degraded_reason != "AsExpected",
                degraded_reason,
                degraded_message,
            ),
        ]
        return {"phase": phase, "conditions": conditions, "components": components}

    def condition(self, kind: str, value: bool, reason: str, message: str) -> dict[str, Any]:
        status = "True" if value else "False"
        previous = next((c for c in self.app.status.conditions if c.type == kind), None)
        at = _rfc3339(self.now)
        if previous is not None and previous.status == status and previous.last_transition_time:
            at = previous.last_transition_time
        result = {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": at,
        }
        if self.app.metadata.generation is not None:
            result["observedGeneration"] = self.app.metadata.generation
        return result

    def leftovers(self) -> bool:
        return any(_owns_objects(obs) for obs in self.observed.values())


def plan(
    app: Application,
    resolved: ResolvedApplication,
    desired: Mapping[tuple[str, str], list[dict]],
    observed: Mapping[tuple[str, str], ZoneObservation],
    running: Sequence[RunningFlow],
    *,
    now: datetime,
    clusters: Mapping[str, dict],
    deleting: bool = False,
) -> Plan:
    """Which flows close the gap between ``desired`` and ``observed`` now.

    ``desired``: ``(component, zone)`` to the zone's rendered manifests (``render_zone``);
    ``observed``: ``(component, zone)`` to :func:`~milkyway.operator.observe.observe_zone`
    (a missing key means nothing was observed there yet); ``running``: this Application's
    FlowRuns (unfinished ones block their component; a Failed one is reported in status);
    ``clusters``: Cluster resources (as dicts) by zone name, for the cluster serving each
    zone; ``deleting``: the Application has a deletionTimestamp.
    """
    planner = _Planner(app, resolved, desired, observed, running, now, clusters, deleting)
    planner.run()
    deleted = deleting and not planner.leftovers() and not planner.start
    return Plan(
        start=tuple(planner.start),
        waiting=tuple(planner.waiting),
        status=planner.status(),
        requeue_after=planner.requeue,
        deleted=deleted,
    )


# --------------------------------------------------------------------------- small helpers


def _owns_objects(obs: ZoneObservation | None) -> bool:
    """Objects of the zone are left (Nodes, observed for context, are not the zone's)."""
    return obs is not None and any(key[0] != "v1/Node" for key in obs.objects)


def _seconds(value: str | None, default: float) -> float:
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _since(member: MemberObservation) -> datetime | None:
    return _parse_time(member.not_ready_since)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _replace_requests(value: str) -> dict[str, str]:
    """``pod@2026-01-01T00:00:00Z`` items (comma or space separated) to their request time."""
    requests: dict[str, str] = {}
    for item in value.replace(",", " ").split():
        name, _, at = item.partition("@")
        if name and at:
            moment = _parse_time(at)
            if moment is not None:
                requests[name] = _rfc3339(moment)
    return requests


__all__ = [
    "REMEDIATE_AFTER",
    "REPLACE_ANNOTATION",
    "FlowRequest",
    "Plan",
    "RunningFlow",
    "ZoneWant",
    "max_unavailable",
    "mutex_key",
    "plan",
    "zone_want",
]

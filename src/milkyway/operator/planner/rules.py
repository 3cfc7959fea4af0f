"""The planner's rules: per component, which lifecycle flow (if any) starts now."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from milkyway.model.application import Application
from milkyway.model.flow import TERMINAL_RUN_PHASES
from milkyway.model.resolve import ResolvedApplication, ResolvedComponent
from milkyway.operator.flows_catalog import flow_name
from milkyway.operator.observe import MemberObservation, ZoneObservation
from milkyway.operator.planner.contract import (
    PROGRESS_DEADLINE,
    PROGRESS_DEADLINE_ANNOTATION,
    REMEDIATE_AFTER,
    REMEDIATE_AFTER_ANNOTATION,
    REPLACE_ANNOTATION,
    RESTART_ANNOTATION,
    RETRY_FAILED_AFTER,
    FlowRequest,
    Plan,
    RunningFlow,
    component_budget,
    mutex_key,
    whole_zone,
)
from milkyway.operator.planner.desired import zone_want
from milkyway.operator.planner.diff import ZoneDiff, diff_zone
from milkyway.operator.planner.lost import (
    LostMember,
)
from milkyway.operator.planner.repair import remediate, replace_members
from milkyway.operator.planner.status import application_status, parse_time, rfc3339
from milkyway.operator.planner.teardown import (
    decommission,
    leftovers,
    orphans,
    release_namespaces,
    remove_orphans,
)


@dataclass
class ComponentDiff:
    """One component's zones diffed, with the disruption budget they share."""

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
        return component_budget(self.resolved, self.down)


class PlanningPass:
    """One planning pass over an Application: applies the rules component by component,
    collecting flows to start, reasons to wait and the earliest time to look again."""

    def __init__(
        self,
        app: Application,
        resolved: ResolvedApplication,
        desired: Mapping[tuple[str, str], list[dict[str, Any]]],
        observed: Mapping[tuple[str, str], ZoneObservation],
        running: Sequence[RunningFlow],
        now: datetime,
        clusters: Mapping[str, dict[str, Any]],
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
        self.components: dict[str, ComponentDiff] = {}
        self.lost: list[LostMember] = []
        """Members on a lost node or failed disk, with the decision about each."""
        for name in resolved.order:
            component = resolved.components[name]
            diffs = []
            for zone in component.zones:
                want = zone_want(
                    resolved, component, zone.name, desired.get((name, zone.name), []), clusters
                )
                diffs.append(diff_zone(want, observed.get((name, zone.name))))
            self.components[name] = ComponentDiff(component, diffs)
        annotations = app.metadata.annotations or {}
        self.remediate_after = _seconds(
            annotations.get(REMEDIATE_AFTER_ANNOTATION), REMEDIATE_AFTER
        )
        self.progress_deadline = (
            _seconds(annotations.get(PROGRESS_DEADLINE_ANNOTATION), PROGRESS_DEADLINE) or 1.0
        )
        self.cancel: list[str] = []
        self.replace_requests = _requests(annotations.get(REPLACE_ANNOTATION, ""))
        self.restart_requests = _requests(annotations.get(RESTART_ANNOTATION, ""))

    # -- helpers ---------------------------------------------------------------------------

    def busy(self, component: str) -> RunningFlow | None:
        for run in self.running:
            if run.component == component and run.phase not in TERMINAL_RUN_PHASES:
                return run
        return None

    def backing_off(self, component: str | None, flow: str) -> bool:
        """The same flow failed for ``component`` and its back-off has not run out: wait,
        so a persistent failure becomes a few attempts further and further apart, not a
        stream of failing runs."""
        run = self.failed_run(component, flow)
        if run is None:
            return False
        retry_at = parse_time(run.retry_at)
        if retry_at is None:
            ended = parse_time(run.finished_at)
            if ended is None:
                return False
            retry_at = ended + timedelta(seconds=RETRY_FAILED_AFTER)
        if retry_at <= self.now:
            return False
        wait = (retry_at - self.now).total_seconds()
        self.later(wait)
        self.waiting.append(
            f"{component}: {run.name} ({flow}) failed (attempt {run.attempt}); "
            f"next attempt at {rfc3339(retry_at)}"
        )
        return True

    def failed_run(self, component: str | None, flow: str) -> RunningFlow | None:
        for run in self.running:
            if run.component == component and run.phase == "Failed" and run.flow == flow:
                return run
        return None

    def not_yet(self, stamp: str) -> bool:
        """A request stamped in the future waits for its time (and a requeue then).

        Creation times have whole seconds, so the CLI stamps a request with the next
        whole second: every member created before the request is older than the stamp,
        and every member the resulting flow creates is not, so none is done twice."""
        moment = parse_time(stamp)
        if moment is None or moment <= self.now:
            return False
        self.later((moment - self.now).total_seconds())
        return True

    def later(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def request(self, component: ComponentDiff, operation: str, reason: str, **params: Any) -> None:
        resolved = component.resolved
        app_component = self.app.component(component.name)
        flow = flow_name(
            operation, resolved.type.name, resolved.type.spec.flows, app_component.flows
        )
        if self.backing_off(component.name, flow):
            return
        failed = self.failed_run(component.name, flow)
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
                attempt=failed.attempt + 1 if failed is not None else 1,
            )
        )

    def gate(self, component: ComponentDiff) -> dict[str, Any]:
        """What the live disruption gate re-checks right before each restart (``oneZone``:
        also that no member of another zone is down)."""
        return {
            "maxUnavailable": component.budget,
            "oneZone": whole_zone(component.resolved, component.down),
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
        self, component: ComponentDiff, members: list[dict[str, Any]], targets_down: int = 0
    ) -> dict[str, Any]:
        """Group-strategy params; ``targets_down`` of ``members`` are already down (they
        are what the flow repairs, so they do not use up the budget: when every target is
        down, repairing them one at a time never adds a member down, and the budget is
        widened just enough for the engine to let the repair run).

        A quorum rolls across all its zones with as many members at once as the remaining
        budget allows (``maxDown - alreadyDown``); the engine's group accounting and the
        live disruption gate before each member keep concurrent restarts within it."""
        policy = component.resolved.type.spec.disruption
        budget = component.budget
        already = max(0, component.down - targets_down)
        max_down = budget if targets_down < len(members) else max(budget, already + 1)
        room = max(1, max_down - already)
        if policy.kind == "quorum":
            parallelism = min(room, max(1, len(members)))
        elif whole_zone(component.resolved, component.down):
            largest = max((z.want.size for z in component.zones), default=1)
            parallelism = max(1, min(largest, room))
        else:
            largest = max((z.want.size for z in component.zones), default=1)
            parallelism = max(1, min(policy.max_unavailable, largest, room))
        for item in members:
            item["batch"] = "all" if policy.kind == "quorum" else item["zone"]
        return {
            "members": members,
            "parallelism": parallelism,
            "maxDown": max_down,
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
            "restartBefore": "",
        }

    def stale_members(self, component: ComponentDiff) -> list[dict[str, Any]]:
        """Members to restart, zone by zone, highest ordinal first within a zone.

        ``_restart_order`` is the ordering hook for followers first, leader last: a type
        that exposes its leader (ZooKeeper ``srvr``/``mntr`` mode) sorts it to the end; the
        observation carries no leader today, so the order is a stable one."""
        items = []
        for zone in component.zones:
            if zone.want.workload == "deployment":
                continue
            for member in sorted(zone.stale, key=_restart_order):
                items.append(self.member_item(zone, member.name, member.ordinal, member.member_id))
        return items

    # -- rules -----------------------------------------------------------------------------

    def run(self) -> None:
        found = orphans(self)
        for name, zones in found.items():
            remove_orphans(self, name, zones)
        if self.deleting:
            decommission(self)
            return
        for component in self.components.values():
            if component.name in found:
                continue
            busy = self.busy(component.name)
            if busy is not None:
                self.waiting.append(
                    f"{component.name}: flow {busy.name} ({busy.flow}) is {busy.phase}"
                )
                continue
            if self.unreachable(component):
                continue
            self.plan_component(component)

    def unreachable(self, c: ComponentDiff) -> bool:
        """True (with the reason) when a zone of ``c`` cannot be observed: nothing is
        planned for the component until every zone can."""
        lost = [z for z in c.zones if z.obs is not None and not z.obs.reachable]
        for zone in lost:
            cluster = zone.obs.cluster if zone.obs is not None else ""
            self.waiting.append(
                f"{c.name}: cluster {cluster} of zone {zone.want.zone} unreachable; waiting"
                if cluster
                else f"{c.name}: no Cluster serves zone {zone.want.zone}; register one"
            )
        return bool(lost)

    def plan_component(self, c: ComponentDiff) -> None:
        zones = c.zones
        if not any(z.provisioned for z in zones) or any(
            z.missing_objects for z in zones if z.provisioned
        ):
            self.provision(c)
            return
        if replace_members(self, c):
            return
        if remediate(self, c):
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
            return
        self.restart_requested(c)

    def restart_requested(self, c: ComponentDiff) -> None:
        """A rolling restart asked for in the ``milkyway.ebay.com/restart`` annotation
        (``component@RFC3339``): members created before that time restart once."""
        stamp = self.restart_requests.get(c.name)
        if stamp is None or self.not_yet(stamp):
            return
        items = []
        for zone in c.zones:
            if zone.want.workload == "deployment" or zone.obs is None:
                continue
            members = [m for m in zone.obs.members if m.exists and (m.created or "") < stamp]
            for member in sorted(members, key=_restart_order):
                item = self.member_item(zone, member.name, member.ordinal, member.member_id)
                items.append({**item, "restartBefore": stamp})
        if not items:
            return
        if c.budget - c.down < 1:
            self.waiting.append(
                f"{c.name}: {c.down} member(s) down, the disruption policy allows {c.budget}; "
                "the requested restart waits"
            )
            return
        self.request(
            c,
            "restart",
            f"restart of {c.name} requested at {stamp}: {len(items)} member(s)",
            zones=[z.want.entry(require_updated=True) for z in c.zones],
            **self.roll_params(c, items),
        )

    def provision(self, c: ComponentDiff) -> None:
        # A dependency counts once it is Ready and no flow is still changing it: its
        # provision flow ends with its own checks, and dependants start after those.
        pending = [
            dep
            for dep in sorted(set(c.resolved.bindings.values()))
            if dep in self.components
            and (not self.components[dep].ready or self.busy(dep) is not None)
        ]
        if pending:
            self.waiting.append(
                f"{c.name}: waiting for {', '.join(pending)} to be Ready with no flow running"
            )
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
            zones=[
                {
                    **z.want.entry(require_updated=not z.provisioned),
                    "progressDeadline": self.progress_deadline,
                }
                for z in (*fresh, *repair)
            ],
        )

    def scale_in(self, c: ComponentDiff) -> None:
        if self.no_room(c, "scale-in"):
            return
        shrinking = [z for z in c.zones if z.removed]
        names = [r["pod"] or r["workload"] or r["claim"] for z in shrinking for r in z.removed]
        self.request(
            c,
            "scale-in",
            f"scale in {c.name}: remove {', '.join(n for n in names if n) or 'surplus members'}",
            shrink=[{**z.want.entry(), "removed": z.removed} for z in shrinking],
            zones=[z.want.entry(require_updated=True) for z in c.zones],
            **self.rolling_guard(c),
        )

    def scale_out(self, c: ComponentDiff) -> None:
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

    def rolling_guard(self, c: ComponentDiff) -> dict[str, Any]:
        return self.roll_params(c, self.stale_members(c))

    def no_room(self, c: ComponentDiff, what: str) -> bool:
        """True (and a waiting reason) when restarting one more member would exceed the
        disruption policy given the members already down."""
        if c.budget - c.down >= 1 or not self.stale_members(c):
            return False
        self.waiting.append(
            f"{c.name}: {c.down} member(s) down, the disruption policy allows {c.budget}; "
            f"the {what} waits"
        )
        return True

    def rolling(self, c: ComponentDiff) -> None:
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


def plan(
    app: Application,
    resolved: ResolvedApplication,
    desired: Mapping[tuple[str, str], list[dict[str, Any]]],
    observed: Mapping[tuple[str, str], ZoneObservation],
    running: Sequence[RunningFlow],
    *,
    now: datetime,
    clusters: Mapping[str, dict[str, Any]],
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
    planner = PlanningPass(app, resolved, desired, observed, running, now, clusters, deleting)
    planner.run()
    released = deleting and release_namespaces(planner)
    deleted = released and not leftovers(planner) and not planner.start
    return Plan(
        start=tuple(planner.start),
        waiting=tuple(planner.waiting),
        status=application_status(planner),
        requeue_after=planner.requeue,
        deleted=deleted,
        cancel=tuple(planner.cancel),
    )


# --------------------------------------------------------------------------- small helpers


def _restart_order(member: MemberObservation) -> int:
    return -(member.ordinal if member.ordinal is not None else (member.member_id or 0))


def _seconds(value: str | None, default: float) -> float:
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def _requests(value: str) -> dict[str, str]:
    """``pod@2026-01-01T00:00:00Z`` items (comma or space separated) to their request time."""
    requests: dict[str, str] = {}
    for item in value.replace(",", " ").split():
        name, _, at = item.partition("@")
        if name and at:
            moment = parse_time(at)
            if moment is not None:
                requests[name] = rfc3339(moment)
    return requests


__all__ = ["ComponentDiff", "PlanningPass", "plan"]

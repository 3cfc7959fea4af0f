"""The planner's rules for taking an Application down: zones and components removed from
the spec (orphans), the decommission of a deleted Application in dependency order, and,
once nothing of it is left, releasing the namespaces Milkyway created for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from milkyway.kube.labels import selector_labels
from milkyway.model.flow import TERMINAL_RUN_PHASES
from milkyway.operator.flows_catalog import flow_name
from milkyway.operator.observe import ZoneObservation
from milkyway.operator.planner.contract import FlowRequest, mutex_key

if TYPE_CHECKING:
    from milkyway.operator.planner.rules import PlanningPass

RELEASE_FLOW = "milkyway-release-namespaces"


def owns_objects(obs: ZoneObservation | None) -> bool:
    """Objects of the zone are left (Nodes, observed for context, are not the zone's)."""
    return obs is not None and any(key[0] != "v1/Node" for key in obs.objects)


def orphans(planner: PlanningPass) -> dict[str, list[ZoneObservation]]:
    """Observed zones no longer in the spec (a zone or a whole component removed)."""
    wanted = {(name, z.want.zone) for name, c in planner.components.items() for z in c.zones}
    found: dict[str, list[ZoneObservation]] = {}
    for key in sorted(planner.observed):
        obs = planner.observed[key]
        if key not in wanted and owns_objects(obs):
            found.setdefault(key[0], []).append(obs)
    return found


def remove_orphans(planner: PlanningPass, component: str, zones: list[ZoneObservation]) -> bool:
    """Start decommissioning ``zones`` of ``component``; False if something blocks it."""
    busy = planner.busy(component)
    if busy is not None:
        planner.waiting.append(f"{component}: flow {busy.name} ({busy.flow}) is {busy.phase}")
        return False
    unreachable = sorted(z.cluster for z in zones if not z.reachable)
    if unreachable:
        planner.waiting.append(
            f"{component}: cluster {', '.join(unreachable)} unreachable; waiting"
        )
        return False
    existing = planner.components.get(component)
    type_name = existing.resolved.type.name if existing else ""
    type_flows = existing.resolved.type.spec.flows if existing else {}
    app_flows = planner.app.component(component).flows if existing else {}
    entries = [
        {
            "zone": z.zone,
            "cluster": z.cluster,
            "namespace": planner.resolved.namespace,
            "selector": selector_labels(planner.resolved.name, component, z.zone),
        }
        for z in zones
    ]
    what = "component" if existing is None else "zone(s)"
    planner.start.append(
        FlowRequest(
            flow=flow_name("decommission", type_name, type_flows, app_flows),
            params={
                "application": planner.resolved.name,
                "namespace": planner.resolved.namespace,
                "component": component,
                "zones": entries,
            },
            component=component,
            reason=f"{what} removed from the spec: delete {component} in "
            f"{', '.join(z.zone for z in zones)}",
            mutex=mutex_key(planner.resolved.namespace, planner.resolved.name, component),
            operation="decommission",
        )
    )
    return True


def decommission(planner: PlanningPass) -> None:
    order = list(planner.resolved.order)
    users: dict[str, set[str]] = {name: set() for name in order}
    for name in order:
        for dep in planner.resolved.components[name].bindings.values():
            users.setdefault(dep, set()).add(name)
    for name in reversed(order):
        c = planner.components[name]
        if not any(owns_objects(z.obs) for z in c.zones):
            continue
        busy = planner.busy(name)
        if busy is not None:
            if busy.operation == "provision":
                # A provision may never finish (no node fits); deletion must not wait.
                planner.cancel.append(busy.name)
                planner.waiting.append(
                    f"{name}: cancelling {busy.name} ({busy.flow}) to decommission"
                )
                continue
            planner.waiting.append(f"{name}: flow {busy.name} ({busy.flow}) is {busy.phase}")
            continue
        remaining = sorted(
            u
            for u in users.get(name, ())
            if any(owns_objects(z.obs) for z in planner.components[u].zones)
        )
        if remaining:
            planner.waiting.append(f"{name}: decommission waits for {', '.join(remaining)}")
            continue
        if planner.unreachable(c):
            continue
        planner.request(
            c,
            "decommission",
            f"decommission {name}",
            zones=[z.want.entry() for z in c.zones],
        )


def release_namespaces(planner: PlanningPass) -> bool:
    """Once nothing of the deleted Application is left and no flow runs: remove the
    namespaces Milkyway created for it (the task keeps any that are still in use or
    existed before). True once that has succeeded."""
    if any(r.flow == RELEASE_FLOW and r.phase == "Succeeded" for r in planner.running):
        return True
    if planner.start or leftovers(planner):
        return False
    if any(r.phase not in TERMINAL_RUN_PHASES for r in planner.running):
        return False
    clusters = sorted(
        {
            (z.want.cluster, z.want.namespace)
            for c in planner.components.values()
            for z in c.zones
            if z.want.cluster
        }
    )
    if not clusters:
        return True
    if planner.backing_off(None, RELEASE_FLOW):
        return False
    failed = planner.failed_run(None, RELEASE_FLOW)
    planner.start.append(
        FlowRequest(
            flow=RELEASE_FLOW,
            params={
                "application": planner.resolved.name,
                "namespace": planner.resolved.namespace,
                "clusters": [{"cluster": c, "namespace": ns} for c, ns in clusters],
            },
            component=None,
            reason="remove the namespaces Milkyway created, if nothing is left in them",
            mutex="",
            operation="release-namespaces",
            attempt=failed.attempt + 1 if failed is not None else 1,
        )
    )
    return False


def leftovers(planner: PlanningPass) -> bool:
    return any(owns_objects(obs) for obs in planner.observed.values())

"""A tiny planner for testing the operator's plumbing apart from the real planner.

It provisions components one after the other in dependency order, each zone with the
engine's ``apply-and-wait`` flow, and reports Running once every workload is ready. It
implements the planner contract (:func:`milkyway.operator.planner.plan`) and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from milkyway.model.application import Application
from milkyway.model.flow import TERMINAL_RUN_PHASES
from milkyway.model.resolve import ResolvedApplication
from milkyway.operator.observe import ZoneObservation
from milkyway.operator.planner import FlowRequest, Plan, RunningFlow


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
    busy = {r.component for r in running if r.phase not in TERMINAL_RUN_PHASES}
    start: list[FlowRequest] = []
    waiting: list[str] = []
    ready = True
    for name in resolved.order:
        component = resolved.components[name]
        pending = [
            z
            for z in component.zones
            if (obs := observed.get((name, z.name))) is None or obs.ready_count < z.size
        ]
        if not pending:
            continue
        ready = False
        for zone in pending:
            key = f"{name}.{zone.name}"
            obs = observed[(name, zone.name)]
            if not obs.reachable:
                waiting.append(f"{key}: cluster {obs.cluster or '?'} unreachable")
            elif key not in busy and not deleting:
                start.append(_provision(resolved, name, zone.name, zone.size, desired, clusters))
        break
    ready = ready and not busy
    status = {
        "phase": "Running" if ready else "Provisioning",
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "AllReady" if ready else "Provisioning",
                "message": "",
            }
        ],
    }
    return Plan(tuple(start), tuple(waiting), status, None if ready else 1.0, deleted=deleting)


def _provision(
    resolved: ResolvedApplication,
    component: str,
    zone: str,
    size: int,
    desired: Mapping[tuple[str, str], list[dict[str, Any]]],
    clusters: Mapping[str, dict[str, Any]],
) -> FlowRequest:
    manifests = desired[(component, zone)]
    workload = next(m for m in manifests if m["kind"] in ("StatefulSet", "Deployment"))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": resolved.namespace}}
    return FlowRequest(
        flow="apply-and-wait",
        params={
            "cluster": clusters[zone]["metadata"]["name"],
            "namespace": resolved.namespace,
            "manifests": [namespace, *manifests],
            "waitFor": {
                "apiVersion": workload["apiVersion"],
                "kind": workload["kind"],
                "name": workload["metadata"]["name"],
                "condition": f"has(object.status.readyReplicas) && "
                f"object.status.readyReplicas == {size}",
            },
            "timeout": 120,
        },
        component=f"{component}.{zone}",
        reason=f"provision {component} in {zone}",
        mutex=f"test/{resolved.namespace}/{resolved.name}/{component}/{zone}",
        operation="provision",
    )

"""Property test of the Deployment and ReplicaSet cores together: whatever order pods turn
Ready in, a rollout never exceeds ``replicas + maxSurge`` pods nor drops below
``replicas - maxUnavailable`` available pods, and it converges on the new template."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.sim.controllers.actions import DEPLOYMENTS, PODS, REPLICASETS, Create, Delete, Patch
from milkyway.sim.controllers.deployment import (
    DeploymentView,
    reconcile_deployment,
    surge_and_unavailable,
)
from milkyway.sim.controllers.objects import controller_of, is_pod_ready
from milkyway.sim.controllers.replicaset import ReplicaSetView, reconcile_replicaset

from .world import World, ready_pod, stamp

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def deployment(replicas: int, surge: Any, unavailable: Any) -> dict[str, Any]:
    return stamp(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "ns"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "api"}},
                "strategy": {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                "template": {
                    "metadata": {"labels": {"app": "api"}},
                    "spec": {"containers": [{"name": "c", "image": "img:1"}]},
                },
            },
        }
    )


def owned_by(world: World, uid: str, resource: Any) -> list[dict[str, Any]]:
    return [o for o in world.of(resource) if (controller_of(o) or {}).get("uid") == uid]


def reconcile_all(world: World) -> int:
    """One pass of every controller; returns how many writes it made."""
    writes = 0
    dep = world.get(DEPLOYMENTS, "api")
    assert dep is not None
    sets = owned_by(world, dep["metadata"]["uid"], REPLICASETS)
    pods = {rs["metadata"]["uid"]: owned_by(world, rs["metadata"]["uid"], PODS) for rs in sets}
    actions = reconcile_deployment(DeploymentView(dep, sets, pods), NOW)
    world.apply(actions)
    writes += sum(
        1 for a in actions if isinstance(a, Create | Delete | Patch) and a.resource != DEPLOYMENTS
    )
    for rs in owned_by(world, dep["metadata"]["uid"], REPLICASETS):
        rs_actions = reconcile_replicaset(
            ReplicaSetView(rs, owned_by(world, rs["metadata"]["uid"], PODS)), NOW
        )
        world.apply(rs_actions)
        writes += sum(1 for a in rs_actions if isinstance(a, Create | Delete))
    return writes


@settings(max_examples=60, deadline=None)
@given(
    replicas=st.integers(1, 8),
    surge=st.one_of(st.integers(0, 3), st.sampled_from(["25%", "50%"])),
    unavailable=st.one_of(st.integers(0, 3), st.sampled_from(["25%", "0%"])),
    data=st.data(),
)
def test_rollout_stays_within_surge_and_unavailability(
    replicas: int, surge: Any, unavailable: Any, data: st.DataObject
) -> None:
    world = World()
    dep = world.put(DEPLOYMENTS, deployment(replicas, surge, unavailable))
    max_surge, max_unavailable = surge_and_unavailable(dep)

    def settle(check: bool) -> None:
        for _ in range(400):
            writes = reconcile_all(world)
            if check:
                assert len(world.pods()) <= replicas + max_surge
                ready = sum(1 for p in world.pods() if is_pod_ready(p))
                assert ready >= replicas - max_unavailable
            waiting = sorted(
                (p for p in world.pods() if not is_pod_ready(p)),
                key=lambda p: p["metadata"]["name"],
            )
            if not waiting and writes == 0:
                return
            if waiting:
                world.put(PODS, ready_pod(data.draw(st.sampled_from(waiting))))
        raise AssertionError("the Deployment did not converge")

    settle(check=False)
    dep = world.get(DEPLOYMENTS, "api")  # type: ignore[assignment]
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "img:2"
    dep["metadata"]["generation"] = 2
    settle(check=True)
    images = {p["spec"]["containers"][0]["image"] for p in world.pods()}
    assert images == {"img:2"} and len(world.pods()) == replicas
    status = world.get(DEPLOYMENTS, "api")["status"]  # type: ignore[index]
    assert status["updatedReplicas"] == status["availableReplicas"] == replicas

"""Property tests of the StatefulSet core over every readiness interleaving hypothesis picks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.sim.controllers.actions import (
    CONTROLLER_REVISIONS,
    PODS,
    PVCS,
    STATEFULSETS,
    Create,
    Delete,
)
from milkyway.sim.controllers.objects import is_pod_ready
from milkyway.sim.controllers.statefulset import (
    REVISION_LABEL,
    StatefulSetView,
    ordinal_of,
    reconcile_statefulset,
)

from .world import World, ready_pod, stamp

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def sts(replicas: int, image: str, **spec: Any) -> dict[str, Any]:
    return stamp(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "ns"},
            "spec": {
                "replicas": replicas,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "c", "image": image}]},
                },
                "volumeClaimTemplates": [
                    {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
                ],
                **spec,
            },
        }
    )


def step(world: World) -> list[Any]:
    obj = world.get(STATEFULSETS, "db")
    assert obj is not None
    pods = {ordinal_of("db", p["metadata"]["name"]): p for p in world.pods()}
    claims = {c["metadata"]["name"]: c for c in world.of(PVCS)}
    revisions = {r["metadata"]["name"]: r for r in world.of(CONTROLLER_REVISIONS)}
    actions = reconcile_statefulset(StatefulSetView(obj, pods, claims, revisions), NOW)  # type: ignore[arg-type]
    world.apply(actions)
    return actions


def run(world: World, choices: st.DataObject, check: Any, limit: int = 200) -> None:
    """Alternate reconciles with one pod turning Ready (picked by hypothesis)."""
    for _ in range(limit):
        actions = step(world)
        check(world, actions)
        waiting = [p for p in world.pods() if not is_pod_ready(p)]
        if not waiting and not [a for a in actions if isinstance(a, Create | Delete)]:
            return
        if waiting:
            pod = choices.draw(
                st.sampled_from(sorted(waiting, key=lambda p: p["metadata"]["name"]))
            )
            world.put(PODS, ready_pod(pod))
    raise AssertionError("the StatefulSet did not converge")


@settings(max_examples=40, deadline=None)
@given(replicas=st.integers(1, 6), data=st.data())
def test_ordered_ready_creates_each_ordinal_after_all_lower_ones_are_ready(
    replicas: int, data: st.DataObject
) -> None:
    world = World()
    world.put(STATEFULSETS, sts(replicas, "img:1"))

    def check(w: World, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Create) and action.resource == PODS:
                ordinal = ordinal_of("db", action.obj["metadata"]["name"])
                assert ordinal is not None
                lower = [
                    ordinal_of("db", p["metadata"]["name"]) for p in w.pods() if is_pod_ready(p)
                ]
                assert set(range(ordinal)) <= set(lower)

    run(world, data, check)
    assert sorted(p["metadata"]["name"] for p in world.pods()) == [
        f"db-{i}" for i in range(replicas)
    ]
    assert {c["metadata"]["name"] for c in world.of(PVCS)} == {
        f"data-db-{i}" for i in range(replicas)
    }


@settings(max_examples=40, deadline=None)
@given(
    replicas=st.integers(1, 6),
    partition=st.integers(0, 6),
    max_unavailable=st.integers(1, 3),
    parallel=st.booleans(),
    data=st.data(),
)
def test_rolling_update_respects_partition_order_and_max_unavailable(
    replicas: int, partition: int, max_unavailable: int, parallel: bool, data: st.DataObject
) -> None:
    world = World()
    strategy = {
        "type": "RollingUpdate",
        "rollingUpdate": {"partition": partition, "maxUnavailable": max_unavailable},
    }
    policy = "Parallel" if parallel else "OrderedReady"
    world.put(
        STATEFULSETS, sts(replicas, "img:1", updateStrategy=strategy, podManagementPolicy=policy)
    )
    run(world, data, lambda w, a: None)
    old = {p["metadata"]["labels"][REVISION_LABEL] for p in world.pods()}
    obj = world.get(STATEFULSETS, "db")
    assert obj is not None
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = "img:2"
    obj["metadata"]["generation"] = 2

    def check(w: World, actions: list[Any]) -> None:
        deleted = [
            ordinal_of("db", a.name)
            for a in actions
            if isinstance(a, Delete) and a.resource == PODS
        ]
        assert all(o is not None and o >= partition for o in deleted)
        assert deleted == sorted(deleted, reverse=True)  # type: ignore[type-var]
        unavailable = replicas - sum(1 for p in w.pods() if is_pod_ready(p))
        assert unavailable <= max_unavailable

    run(world, data, check)
    revisions = {
        ordinal_of("db", p["metadata"]["name"]): p["metadata"]["labels"][REVISION_LABEL]
        for p in world.pods()
    }
    for ordinal, revision in revisions.items():
        assert (revision in old) == (ordinal is not None and ordinal < partition)
    status = world.get(STATEFULSETS, "db")["status"]  # type: ignore[index]
    assert status["updatedReplicas"] == max(0, replicas - partition)
    assert status["observedGeneration"] == 2


@settings(max_examples=25, deadline=None)
@given(replicas=st.integers(1, 5), down_to=st.integers(0, 4), data=st.data())
def test_scaling_removes_highest_ordinals_first_and_keeps_claims(
    replicas: int, down_to: int, data: st.DataObject
) -> None:
    world = World()
    world.put(STATEFULSETS, sts(replicas, "img:1"))
    run(world, data, lambda w, a: None)
    world.get(STATEFULSETS, "db")["spec"]["replicas"] = down_to  # type: ignore[index]
    removed: list[int] = []

    def check(w: World, actions: list[Any]) -> None:
        removed.extend(
            o
            for a in actions
            if isinstance(a, Delete) and a.resource == PODS
            if (o := ordinal_of("db", a.name)) is not None
        )

    run(world, data, check)
    assert removed == sorted(removed, reverse=True)
    assert len(world.pods()) == down_to
    assert len(world.of(PVCS)) == max(replicas, down_to)

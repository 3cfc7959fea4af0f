"""Deployment -> ReplicaSet -> Pods: rollouts stay within maxSurge/maxUnavailable at every
instant (checked on every readiness transition by the monitor), revision history."""

from __future__ import annotations

from typing import Any

import pytest
from tests.polling import eventually

from milkyway.sim.monitor import Tally, subscribe

from .conftest import Sim


def deployment(replicas: int, surge: Any, unavailable: Any, image: str = "app:1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "api"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
            },
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


def _complete(sim: Sim, image: str) -> bool:
    dep = sim.api.get("apps/v1/deployments", "api", namespace="default")
    status = dep.get("status") or {}
    replicas = dep["spec"]["replicas"]
    pods = [
        p for p in sim.plane.pods.objects.values() if p["metadata"]["labels"].get("app") == "api"
    ]
    return (
        status.get("observedGeneration") == dep["metadata"]["generation"]
        and status.get("updatedReplicas") == replicas
        and status.get("availableReplicas") == replicas
        and status.get("replicas") == replicas
        and len(pods) == replicas
        and all(p["spec"]["containers"][0]["image"] == image for p in pods)
    )


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "max_alive", "min_ready"),
    [(4, 1, 0, 5, 4), (4, 0, 1, 4, 3), (8, "25%", "25%", 10, 6), (5, 2, 2, 7, 3)],
)
async def test_rollout_respects_surge_and_unavailability_at_every_instant(
    slow_sim: Sim, replicas: int, surge: Any, unavailable: Any, max_alive: int, min_ready: int
) -> None:
    slow_sim.api.create(deployment(replicas, surge, unavailable))
    await eventually(lambda: _complete(slow_sim, "app:1"), what="first rollout")
    tally = Tally({"app": "api"})
    unsubscribe = subscribe(slow_sim.api, tally)
    tally.reset()
    for image in ("app:2", "app:3"):
        slow_sim.api.patch(
            "apps/v1/deployments",
            "api",
            {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}},
            namespace="default",
        )
        await eventually(lambda image=image: _complete(slow_sim, image), what=f"rollout {image}")
    unsubscribe()
    assert tally.max_alive <= max_alive
    assert tally.min_ready is not None and tally.min_ready >= min_ready
    assert any(not t.alive for t in tally.history), "the rollout replaced no pod"


async def test_replica_sets_carry_revisions_and_history_is_trimmed(sim: Sim) -> None:
    manifest = deployment(2, 1, 0)
    manifest["spec"]["revisionHistoryLimit"] = 1
    sim.api.create(manifest)
    for n in range(2, 5):
        await eventually(lambda n=n: _complete(sim, f"app:{n - 1}"))
        sim.api.patch(
            "apps/v1/deployments",
            "api",
            {
                "spec": {
                    "template": {"spec": {"containers": [{"name": "main", "image": f"app:{n}"}]}}
                }
            },
            namespace="default",
        )
    await eventually(lambda: _complete(sim, "app:4"))
    await sim.plane.settle()
    sets = sim.api.list("apps/v1/replicasets", namespace="default")["items"]
    revisions = sorted(
        int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) for rs in sets
    )
    assert revisions == [3, 4]
    dep = sim.api.get("apps/v1/deployments", "api", namespace="default")
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"
    conditions = {c["type"]: c for c in dep["status"]["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"


async def test_scale_down_removes_pods_and_deleting_deployment_collects_everything(
    sim: Sim,
) -> None:
    sim.api.create(deployment(3, 1, 0))
    await eventually(lambda: _complete(sim, "app:1"))
    sim.api.patch("apps/v1/deployments", "api", {"spec": {"replicas": 1}}, namespace="default")
    await eventually(lambda: _complete(sim, "app:1"), what="scaled to 1")
    sim.api.delete("apps/v1/deployments", "api", namespace="default")
    await eventually(
        lambda: (
            not sim.api.list("apps/v1/replicasets")["items"] and not sim.api.list("pods")["items"]
        ),
        what="garbage collection of replica sets and pods",
    )


async def test_recreate_strategy_empties_old_pods_before_starting_new_ones(slow_sim: Sim) -> None:
    manifest = deployment(3, 1, 0)
    manifest["spec"]["strategy"] = {"type": "Recreate"}
    slow_sim.api.create(manifest)
    await eventually(lambda: _complete(slow_sim, "app:1"))
    tally = Tally({"app": "api"})
    unsubscribe = subscribe(slow_sim.api, tally)
    tally.reset()
    slow_sim.api.patch(
        "apps/v1/deployments",
        "api",
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "app:2"}]}}}},
        namespace="default",
    )
    await eventually(lambda: _complete(slow_sim, "app:2"), what="recreated")
    unsubscribe()
    assert tally.min_ready == 0 and tally.max_alive == 3


async def test_min_ready_seconds_delays_availability(sim: Sim) -> None:
    manifest = deployment(1, 1, 0)
    manifest["spec"]["minReadySeconds"] = 2
    sim.api.create(manifest)
    await eventually(
        lambda: (
            (
                sim.api.get("apps/v1/deployments", "api", namespace="default").get("status") or {}
            ).get("readyReplicas")
            == 1
        )
    )
    status = sim.api.get("apps/v1/deployments", "api", namespace="default")["status"]
    assert status.get("availableReplicas", 0) == 0
    await eventually(lambda: _complete(sim, "app:1"), what="available after minReadySeconds")

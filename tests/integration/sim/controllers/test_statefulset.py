"""StatefulSet semantics: ordered start, reverse-ordinal rolling update, partition, OnDelete,
PVCs per ordinal that outlive their pods."""

from __future__ import annotations

from typing import Any

from tests.polling import eventually

from milkyway.sim.monitor import Tally, Transition, subscribe

from .conftest import Sim, sts_manifest


def _ready(sim: Sim, name: str = "web") -> bool:
    sts = sim.api.get("apps/v1/statefulsets", name, namespace="default")
    status = sts.get("status") or {}
    return (
        status.get("readyReplicas") == sts["spec"]["replicas"]
        and status.get("updatedReplicas") == sts["spec"]["replicas"]
        and status.get("currentRevision") == status.get("updateRevision")
        and status.get("observedGeneration") == sts["metadata"]["generation"]
    )


def _set_image(sim: Sim, image: str, name: str = "web") -> None:
    sim.api.patch(
        "apps/v1/statefulsets",
        name,
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}},
        namespace="default",
    )


def _image(pod: dict[str, Any]) -> str:
    return pod["spec"]["containers"][0]["image"] if pod else ""


async def test_pods_start_in_order_each_after_the_previous_is_ready(slow_sim: Sim) -> None:
    log: list[Transition] = []
    unsubscribe = subscribe(slow_sim.api, log.append)
    slow_sim.api.create(sts_manifest())
    await eventually(lambda: _ready(slow_sim), what="web ready")
    unsubscribe()

    def first(name: str, *, ready: bool) -> int:
        return next(i for i, t in enumerate(log) if t.name == name and t.ready == ready and t.alive)

    assert [t.name for t in log if t.alive and not t.ready][:3] == ["web-0", "web-1", "web-2"]
    assert first("web-0", ready=True) < first("web-1", ready=False)
    assert first("web-1", ready=True) < first("web-2", ready=False)


async def test_image_change_replaces_pods_in_reverse_order_one_at_a_time(slow_sim: Sim) -> None:
    slow_sim.api.create(sts_manifest())
    await eventually(lambda: _ready(slow_sim), what="web ready")
    tally = Tally({"app": "web"})
    unsubscribe = subscribe(slow_sim.api, tally)
    tally.reset()
    _set_image(slow_sim, "nginx:1.28")
    await eventually(
        lambda: (
            _ready(slow_sim)
            and all(_image(slow_sim.pod(f"web-{i}") or {}) == "nginx:1.28" for i in range(3))
        ),
        what="rolled to nginx:1.28",
    )
    unsubscribe()
    went_down = [t.name for t in tally.history if not t.alive]
    assert [n for i, n in enumerate(went_down) if n not in went_down[:i]] == [
        "web-2",
        "web-1",
        "web-0",
    ]
    assert tally.max_down(3) == 1


async def test_partition_updates_only_ordinals_at_or_above_it(sim: Sim) -> None:
    sim.api.create(
        sts_manifest(strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    )
    await eventually(lambda: _ready(sim), what="web ready")
    old_revision = sim.api.get("apps/v1/statefulsets", "web", namespace="default")["status"][
        "currentRevision"
    ]
    _set_image(sim, "nginx:1.28")
    await eventually(
        lambda: (
            _image(sim.pod("web-2") or {}) == "nginx:1.28"
            and (sim.api.get("apps/v1/statefulsets", "web", namespace="default")["status"]).get(
                "updatedReplicas"
            )
            == 1
        ),
        what="web-2 updated",
    )
    await sim.plane.settle()
    status = sim.api.get("apps/v1/statefulsets", "web", namespace="default")["status"]
    assert status["currentRevision"] == old_revision != status["updateRevision"]
    assert _image(sim.pod("web-0") or {}) == _image(sim.pod("web-1") or {}) == "nginx:1.27"
    # Deleting a pod below the partition brings it back at the current revision.
    sim.api.delete("pods", "web-0", namespace="default", grace_period_seconds=0)
    await eventually(lambda: (sim.pod("web-0") or {}).get("status", {}).get("phase") == "Running")
    assert _image(sim.pod("web-0") or {}) == "nginx:1.27"
    sim.api.patch(
        "apps/v1/statefulsets",
        "web",
        {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}},
        namespace="default",
    )
    await eventually(
        lambda: (
            _ready(sim) and all(_image(sim.pod(f"web-{i}") or {}) == "nginx:1.28" for i in range(3))
        ),
        what="all updated after partition 0",
    )


async def test_on_delete_leaves_pods_until_they_are_deleted(sim: Sim) -> None:
    sim.api.create(sts_manifest(strategy={"type": "OnDelete"}))
    await eventually(lambda: _ready(sim), what="web ready")
    _set_image(sim, "nginx:1.28")
    await sim.plane.settle()
    assert {_image(sim.pod(f"web-{i}") or {}) for i in range(3)} == {"nginx:1.27"}
    sim.api.delete("pods", "web-1", namespace="default", grace_period_seconds=0)
    await eventually(
        lambda: (
            _image(sim.pod("web-1") or {}) == "nginx:1.28"
            and (sim.pod("web-1") or {}).get("status", {}).get("phase") == "Running"
        ),
        what="web-1 recreated at the update revision",
    )
    assert _image(sim.pod("web-0") or {}) == _image(sim.pod("web-2") or {}) == "nginx:1.27"
    status = sim.api.get("apps/v1/statefulsets", "web", namespace="default")["status"]
    assert status["updatedReplicas"] == 1


async def test_claims_outlive_their_pods_and_rebind_on_scale_up(sim: Sim) -> None:
    sim.api.create(sts_manifest())
    await eventually(lambda: _ready(sim), what="web ready")
    volumes = {
        c["metadata"]["name"]: c["spec"]["volumeName"]
        for c in sim.api.list("persistentvolumeclaims", namespace="default")["items"]
    }
    assert set(volumes) == {"data-web-0", "data-web-1", "data-web-2"}
    sim.api.patch("apps/v1/statefulsets", "web", {"spec": {"replicas": 1}}, namespace="default")
    await eventually(lambda: sim.pod("web-1") is None and sim.pod("web-2") is None)
    await sim.plane.settle()
    left = {c["metadata"]["name"] for c in sim.api.list("persistentvolumeclaims")["items"]}
    assert left == set(volumes)
    node_of_2 = None
    sim.api.patch("apps/v1/statefulsets", "web", {"spec": {"replicas": 3}}, namespace="default")
    await eventually(lambda: _ready(sim), what="scaled back up")
    node_of_2 = (sim.pod("web-2") or {})["spec"]["nodeName"]
    pv = sim.api.get("persistentvolumes", volumes["data-web-2"])
    pinned = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert pinned["values"] == [node_of_2]


async def test_retention_policy_delete_on_scale_down(sim: Sim) -> None:
    manifest = sts_manifest()
    manifest["spec"]["persistentVolumeClaimRetentionPolicy"] = {
        "whenScaled": "Delete",
        "whenDeleted": "Retain",
    }
    sim.api.create(manifest)
    await eventually(lambda: _ready(sim), what="web ready")
    sim.api.patch("apps/v1/statefulsets", "web", {"spec": {"replicas": 1}}, namespace="default")
    await eventually(
        lambda: (
            {c["metadata"]["name"] for c in sim.api.list("persistentvolumeclaims")["items"]}
            == {"data-web-0"}
        ),
        what="claims of removed ordinals deleted",
    )


async def test_parallel_policy_creates_all_pods_at_once(sim: Sim) -> None:
    log: list[Transition] = []
    unsubscribe = subscribe(sim.api, log.append)
    sim.api.create(sts_manifest(policy="Parallel", storage_class=None))
    await eventually(lambda: _ready(sim), what="web ready")
    unsubscribe()
    created = [t.name for t in log if t.alive and not t.ready]
    first_ready = next(i for i, t in enumerate(log) if t.ready)
    assert set(created[:3]) == {"web-0", "web-1", "web-2"}
    assert len([t for t in log[:first_ready] if t.alive and not t.ready]) == 3

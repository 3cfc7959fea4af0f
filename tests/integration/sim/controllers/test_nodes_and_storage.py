"""Nodes, scheduling and local storage: a pod pinned by its local PV to a lost node stays
Pending with a scheduling event until its claim is deleted and recreated."""

from __future__ import annotations

from typing import Any

from tests.polling import eventually

from milkyway.sim.controllers.objects import pod_condition

from .conftest import Sim, sts_manifest


def _node_ready(sim: Sim, node: str) -> str:
    obj = sim.api.get("nodes", node)
    return next(c["status"] for c in obj["status"]["conditions"] if c["type"] == "Ready")


def _running(pod: dict[str, Any] | None) -> bool:
    return bool(pod) and pod.get("status", {}).get("phase") == "Running"  # type: ignore[union-attr]


async def test_nodes_start_ready_with_topology_labels_and_leases(sim: Sim) -> None:
    nodes = sim.api.list("nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == ["test-node-0", "test-node-1", "test-node-2"]
    for node in nodes:
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == node["metadata"]["name"]
        assert "topology.kubernetes.io/zone" in labels
        assert _node_ready(sim, node["metadata"]["name"]) == "True"
    leases = sim.api.list("coordination.k8s.io/v1/leases", namespace="kube-node-lease")["items"]
    assert {lease["metadata"]["name"] for lease in leases} == {n["metadata"]["name"] for n in nodes}


async def test_local_pv_pod_stays_pending_after_node_loss_until_claim_is_recreated(
    sim: Sim,
) -> None:
    sim.api.create(sts_manifest(replicas=1))
    await eventually(lambda: _running(sim.pod("web-0")), what="web-0 running")
    lost = sim.pod("web-0")["spec"]["nodeName"]  # type: ignore[index]
    await sim.faults.lose_node("test", lost)
    await eventually(lambda: _node_ready(sim, lost) == "Unknown", what="node marked Unknown")
    taints = sim.api.get("nodes", lost)["spec"]["taints"]
    assert {(t["key"], t["effect"]) for t in taints} >= {
        ("node.kubernetes.io/unreachable", "NoExecute")
    }
    await eventually(
        lambda: (sim.pod("web-0") or {}).get("metadata", {}).get("deletionTimestamp"),
        what="web-0 evicted (terminating)",
    )
    # No kubelet confirms the deletion: the operator force-deletes, as on a real cluster.
    sim.api.delete("pods", "web-0", namespace="default", grace_period_seconds=0)

    def pending_with_reason() -> bool:
        pod = sim.pod("web-0")
        cond = pod_condition(pod, "PodScheduled") if pod else None
        return (
            bool(cond)
            and cond["status"] == "False"
            and "volume node affinity conflict"
            in (  # type: ignore[index]
                cond.get("message", "")  # type: ignore[union-attr]
            )
        )

    await eventually(pending_with_reason, what="web-0 pending on its lost local volume")
    assert sim.pod("web-0")["status"]["phase"] == "Pending"  # type: ignore[index]
    assert any(
        "volume node affinity conflict" in e["message"]
        for e in sim.events("web-0", "FailedScheduling")
    )
    await sim.plane.settle()
    assert not sim.pod("web-0")["spec"].get("nodeName")  # type: ignore[index]

    sim.api.delete("persistentvolumeclaims", "data-web-0", namespace="default")
    await eventually(lambda: _running(sim.pod("web-0")), what="web-0 running elsewhere")
    assert sim.pod("web-0")["spec"]["nodeName"] != lost  # type: ignore[index]
    claim = sim.api.get("persistentvolumeclaims", "data-web-0", namespace="default")
    assert claim["status"]["phase"] == "Bound"


async def test_lifting_node_loss_brings_node_back_ready(sim: Sim) -> None:
    fault = await sim.faults.lose_node("test", "test-node-1")
    await eventually(lambda: _node_ready(sim, "test-node-1") == "Unknown")
    await sim.faults.lift(fault.id)
    await eventually(lambda: _node_ready(sim, "test-node-1") == "True", what="node ready again")
    assert not sim.api.get("nodes", "test-node-1")["spec"].get("taints")
    assert sim.events("test-node-1", "NodeNotReady") and sim.events("test-node-1", "NodeReady")


async def test_scheduler_honours_selectors_taints_resources_and_anti_affinity(sim: Sim) -> None:
    sim.api.patch(
        "nodes",
        "test-node-0",
        {"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}},
    )

    def pod(name: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "spread"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
        }

    sim.api.create(pod("selected", nodeSelector={"kubernetes.io/hostname": "test-node-2"}))
    sim.api.create(
        pod(
            "tolerating",
            nodeSelector={"kubernetes.io/hostname": "test-node-0"},
            tolerations=[
                {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}
            ],
        )
    )
    sim.api.create(pod("untolerated", nodeSelector={"kubernetes.io/hostname": "test-node-0"}))
    sim.api.create(
        pod(
            "too-big",
            containers=[
                {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "64"}}}
            ],
        )
    )
    await eventually(lambda: _running(sim.pod("selected")) and _running(sim.pod("tolerating")))
    assert sim.pod("selected")["spec"]["nodeName"] == "test-node-2"  # type: ignore[index]
    await sim.plane.settle()
    untolerated = pod_condition(sim.pod("untolerated"), "PodScheduled")  # type: ignore[arg-type]
    assert untolerated is not None and untolerated["reason"] == "Unschedulable"
    assert "untolerated taint {dedicated: db}" in untolerated["message"]
    big = pod_condition(sim.pod("too-big"), "PodScheduled")  # type: ignore[arg-type]
    assert big is not None and "Insufficient cpu" in big["message"]
    assert big["message"].startswith("0/3 nodes are available: ")

    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"role": "member"}},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }
    for i in range(3):
        member = pod(f"member-{i}", affinity=anti)
        member["metadata"]["labels"] = {"role": "member"}
        sim.api.create(member)
    await sim.plane.settle()
    placed = [sim.pod(f"member-{i}")["spec"].get("nodeName") for i in range(3)]  # type: ignore[index]
    # node-0 is tainted, so only two members fit, one per host.
    assert len({n for n in placed if n}) == 2 and placed.count(None) == 1
    # Removing the taint lets the third one in.
    sim.api.patch("nodes", "test-node-0", {"spec": {"taints": None}})
    await eventually(
        lambda: all(sim.pod(f"member-{i}")["spec"].get("nodeName") for i in range(3)),  # type: ignore[index]
        what="third member scheduled once a host is free",
    )


async def test_deleting_a_dead_node_frees_its_pods_and_a_live_one_registers_again(
    sim: Sim,
) -> None:
    sim.api.create(sts_manifest(replicas=1, storage_class=None))
    await eventually(lambda: _running(sim.pod("web-0")), what="web-0 running")
    lost = sim.pod("web-0")["spec"]["nodeName"]  # type: ignore[index]
    uid = sim.pod("web-0")["metadata"]["uid"]  # type: ignore[index]
    await sim.faults.lose_node("test", lost)
    await eventually(lambda: _node_ready(sim, lost) == "Unknown")
    sim.api.delete("nodes", lost)
    await eventually(
        lambda: _running(sim.pod("web-0")) and sim.pod("web-0")["metadata"]["uid"] != uid,  # type: ignore[index]
        what="web-0 recreated on a live node once its node is gone",
    )
    assert sim.pod("web-0")["spec"]["nodeName"] != lost  # type: ignore[index]
    assert sim.events("web-0", "PodGC")

    alive = next(n for n in ("test-node-0", "test-node-1", "test-node-2") if n != lost)
    sim.api.delete("nodes", alive)
    await eventually(
        lambda: any(n["metadata"]["name"] == alive for n in sim.api.list("nodes")["items"]),
        what="a live kubelet re-registering its node",
    )

"""Simulated nodes: their specification, the Node objects and the heartbeat Leases.

A cluster starts with a set of Ready nodes described by :class:`NodeSpec` (capacity,
region/zone/hostname labels, taints). Each node's kubelet renews a Lease in
``kube-node-lease`` as a real kubelet does; the node lifecycle controller watches those
Leases to decide when a node has gone silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from milkyway.sim.controllers.objects import Obj, now_rfc3339

REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
HOSTNAME_LABEL = "kubernetes.io/hostname"
LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.32.0"


@dataclass(frozen=True)
class NodeSpec:
    """One simulated node. ``ip`` is assigned from the cluster's node network if empty."""

    name: str
    cpu: str = "8"
    memory: str = "32Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()
    ip: str = ""


def default_nodes(
    count: int, *, cluster: str = "sim", region: str = "region-1", zone: str = "zone-a"
) -> list[NodeSpec]:
    """``count`` identical nodes named ``<cluster>-node-<i>`` in one region and zone."""
    if count < 0:
        raise ValueError(f"nodes: {count} is negative; give 0 or more nodes")
    return [
        NodeSpec(name=f"{cluster}-node-{i}", labels={REGION_LABEL: region, ZONE_LABEL: zone})
        for i in range(count)
    ]


def node_ip(index: int, cluster_index: int = 0) -> str:
    return f"10.{cluster_index % 250}.{index // 250}.{index % 250 + 1}"


def ready_condition(ready: str, reason: str, message: str, now: str) -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": ready,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }


def healthy_conditions(now: str) -> list[dict[str, Any]]:
    pressure = [
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ]
    out = [
        {
            "type": t,
            "status": "False",
            "reason": r,
            "message": m,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        for t, r, m in pressure
    ]
    out.append(ready_condition("True", "KubeletReady", "kubelet is posting ready status", now))
    return out


def node_object(spec: NodeSpec, ip: str) -> Obj:
    labels = {
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        HOSTNAME_LABEL: spec.name,
        "type": "kwok",
        **spec.labels,
    }
    capacity = {
        "cpu": spec.cpu,
        "memory": spec.memory,
        "pods": str(spec.pods),
        "ephemeral-storage": spec.ephemeral_storage,
    }
    now = now_rfc3339()
    node: Obj = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": healthy_conditions(now),
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": spec.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "containerRuntimeVersion": "sim://1.0",
                "osImage": "Milkyway simulated node",
                "kernelVersion": "sim",
                "machineID": spec.name,
                "systemUUID": spec.name,
                "bootID": spec.name,
            },
            "phase": "Running",
        },
    }
    if spec.taints:
        node["spec"]["taints"] = [dict(t) for t in spec.taints]
    return node


def lease_object(node: str, now_micro: str, duration_seconds: int = 40) -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node, "namespace": LEASE_NAMESPACE},
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": duration_seconds,
            "renewTime": now_micro,
        },
    }


def node_internal_ip(node: Obj) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return address.get("address", "")
    return ""

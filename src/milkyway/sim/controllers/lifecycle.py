"""The node lifecycle controller: notices silent nodes from their Leases.

Every ``node_monitor_period`` it compares each node's Lease ``renewTime`` with
``node_grace_period``. A silent node gets ``Ready=Unknown`` ("Kubelet stopped posting
node status."), the ``node.kubernetes.io/unreachable`` NoSchedule and NoExecute taints,
and its pods are marked NotReady; after ``pod_eviction_timeout`` its pods are deleted
(they stay Terminating: no kubelet is left to confirm, exactly as on a real cluster).
A node that heartbeats again gets Ready back and loses the taints. Like the pod garbage
collector, it force-deletes pods bound to a node that no longer exists once that has
lasted ``node_grace_period`` (what an operator relies on after deleting a dead Node).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from datetime import UTC, datetime

from milkyway.sim.controllers.actions import NODES, PODS, Action, Delete, Event, Patch
from milkyway.sim.controllers.objects import (
    Obj,
    is_terminating,
    name_of,
    namespace_of,
    now_rfc3339,
    object_ref,
    parse_time,
    uid_of,
)
from milkyway.sim.controllers.runtime import ControlPlane
from milkyway.sim.nodes import LEASE_NAMESPACE

SOURCE = "node-controller"
UNREACHABLE = "node.kubernetes.io/unreachable"
_TICK = ("", "tick")


def _ready_status(node: Obj) -> str:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status", "Unknown")
    return "Unknown"


def _tolerates_forever(pod: Obj) -> bool:
    for tol in (pod.get("spec") or {}).get("tolerations") or []:
        if (
            tol.get("operator") == "Exists"
            and tol.get("key") in (None, "", UNREACHABLE)
            and tol.get("effect") in (None, "", "NoExecute")
            and tol.get("tolerationSeconds") is None
        ):
            return True
    return False


def conditions_unknown(node: Obj, stamp: str) -> list[dict[str, str]]:
    out = []
    for cond in (node.get("status") or {}).get("conditions") or []:
        new = dict(cond)
        if new.get("type") in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
            if new.get("status") != "Unknown":
                new["lastTransitionTime"] = stamp
            new["status"] = "Unknown"
            new["reason"] = "NodeStatusUnknown"
            new["message"] = "Kubelet stopped posting node status."
        out.append(new)
    return out


def conditions_ready(node: Obj, stamp: str) -> list[dict[str, str]]:
    healthy = {
        "Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
        "MemoryPressure": (
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    }
    out = []
    for cond in (node.get("status") or {}).get("conditions") or []:
        new = dict(cond)
        if new.get("type") in healthy:
            status, reason, message = healthy[new["type"]]
            if new.get("status") != status:
                new["lastTransitionTime"] = stamp
            new.update(status=status, reason=reason, message=message, lastHeartbeatTime=stamp)
        out.append(new)
    return out


class NodeLifecycleController:
    name = "node-lifecycle"

    def setup(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.config = plane.config
        self.silent_since: dict[str, float] = {}
        self.evicted: set[str] = set()
        self.orphaned_since: dict[str, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.plane.enqueue(self.name, _TICK)
            self._schedule()

        self._timer = loop.call_later(self.config.node_monitor_period, tick)

    def reconcile(self, key: Hashable) -> list[Action]:
        actions: list[Action] = []
        now = time.monotonic()
        wall = datetime.now(UTC)
        leases = self.plane.informer("coordination.k8s.io/v1/leases")
        for node in list(self.plane.informer("v1/nodes").objects.values()):
            name = name_of(node)
            lease = leases.get(LEASE_NAMESPACE, name)
            renew = ((lease or {}).get("spec") or {}).get("renewTime")
            if not renew:
                continue
            age = (wall - parse_time(renew)).total_seconds()
            if age > self.config.node_grace_period:
                actions += self._silent(node, now)
            else:
                actions += self._heard(node)
        return actions + self._collect_orphans(now)

    def _collect_orphans(self, now: float) -> list[Action]:
        nodes = self.plane.informer("v1/nodes")
        gone = {
            str(n) for n in self.plane.pods.index_values("node") if nodes.get("", str(n)) is None
        }
        for name in set(self.orphaned_since) - gone:
            del self.orphaned_since[name]
        actions: list[Action] = []
        for name in gone:
            since = self.orphaned_since.setdefault(name, now)
            if now - since < self.config.node_grace_period:
                continue
            for pod in self.plane.pods.by_index("node", name):
                actions.append(
                    Delete(
                        PODS,
                        namespace_of(pod),
                        name_of(pod),
                        grace_period_seconds=0,
                        uid=uid_of(pod),
                    )
                )
                actions.append(
                    Event(
                        object_ref(pod),
                        "Normal",
                        "PodGC",
                        f"Deleting pod {namespace_of(pod)}/{name_of(pod)}: "
                        f"node {name} no longer exists",
                        "pod-garbage-collector",
                    )
                )
        return actions

    def _silent(self, node: Obj, now: float) -> list[Action]:
        name = name_of(node)
        stamp = now_rfc3339(self.plane.now())
        actions: list[Action] = []
        if _ready_status(node) != "Unknown":
            self.silent_since[name] = now
            taints = [
                t
                for t in (node.get("spec") or {}).get("taints") or []
                if t.get("key") != UNREACHABLE
            ]
            taints += [
                {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": stamp},
                {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": stamp},
            ]
            actions.append(Patch(NODES, "", name, {"spec": {"taints": taints}}))
            actions.append(
                Patch(
                    NODES,
                    "",
                    name,
                    {"status": {"conditions": conditions_unknown(node, stamp)}},
                    "status",
                )
            )
            actions.append(
                Event(
                    object_ref(node),
                    "Normal",
                    "NodeNotReady",
                    f"Node {name} status is now: NodeNotReady",
                    SOURCE,
                )
            )
            for pod in self.plane.pods.by_index("node", name):
                actions += self._mark_not_ready(pod, stamp)
            return actions
        since = self.silent_since.setdefault(name, now)
        if now - since >= self.config.pod_eviction_timeout and name not in self.evicted:
            self.evicted.add(name)
            for pod in self.plane.pods.by_index("node", name):
                if is_terminating(pod) or _tolerates_forever(pod):
                    continue
                actions.append(Delete(PODS, namespace_of(pod), name_of(pod), uid=uid_of(pod)))
                actions.append(
                    Event(
                        object_ref(pod),
                        "Normal",
                        "TaintManagerEviction",
                        f"Marking for deletion Pod {namespace_of(pod)}/{name_of(pod)}",
                        "taint-eviction-controller",
                    )
                )
        return actions

    def _mark_not_ready(self, pod: Obj, stamp: str) -> list[Action]:
        conditions = []
        changed = False
        for cond in (pod.get("status") or {}).get("conditions") or []:
            new = dict(cond)
            if new.get("type") in ("Ready", "ContainersReady") and new.get("status") != "False":
                new.update(status="False", lastTransitionTime=stamp)
                changed = True
            conditions.append(new)
        if not changed:
            return []
        return [
            Patch(
                PODS,
                namespace_of(pod),
                name_of(pod),
                {"status": {"conditions": conditions}},
                "status",
            ),
        ]

    def _heard(self, node: Obj) -> list[Action]:
        name = name_of(node)
        self.silent_since.pop(name, None)
        self.evicted.discard(name)
        if _ready_status(node) != "Unknown":
            return []
        stamp = now_rfc3339(self.plane.now())
        taints = [
            t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") != UNREACHABLE
        ]
        return [
            Patch(NODES, "", name, {"spec": {"taints": taints or None}}),
            Patch(
                NODES, "", name, {"status": {"conditions": conditions_ready(node, stamp)}}, "status"
            ),
            Event(
                object_ref(node),
                "Normal",
                "NodeReady",
                f"Node {name} status is now: NodeReady",
                SOURCE,
            ),
        ]

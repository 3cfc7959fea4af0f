"""The scheduler shell: node states kept per event, pending pods bound through pods/binding.

Pods that do not fit wait in an unschedulable set; anything that could make room (a node
changing, a pod leaving a node, a claim or volume changing) moves them back to the
queue, as kube-scheduler's unschedulable queue is flushed on cluster events.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping

from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.controllers.actions import PODS, Action, Event, Patch
from milkyway.sim.controllers.objects import (
    Obj,
    is_terminating,
    key_of,
    name_of,
    namespace_of,
    now_rfc3339,
    object_ref,
    pod_condition,
    pod_phase,
)
from milkyway.sim.controllers.podstatus import unschedulable_status
from milkyway.sim.controllers.runtime import ControlPlane
from milkyway.sim.controllers.scheduler import Bind, NodeState, VolumeView, schedule

SCHEDULER_NAME = "default-scheduler"


class _VolumesByName(Mapping[str, Obj]):
    """PersistentVolumes by name over the informer's ``("", name)`` keys."""

    def __init__(self, objects: Mapping[tuple[str, str], Obj]) -> None:
        self._objects = objects

    def __getitem__(self, name: str) -> Obj:
        return self._objects[("", name)]

    def __iter__(self) -> Iterator[str]:
        return (name for _, name in self._objects)

    def __len__(self) -> int:
        return len(self._objects)


def _wants_scheduling(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (
        not spec.get("nodeName")
        and not is_terminating(pod)
        and (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME
        and pod_phase(pod) not in ("Succeeded", "Failed")
    )


def _occupies_node(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName")) and pod_phase(pod) not in (
        "Succeeded",
        "Failed",
    )


class SchedulerController:
    name = "scheduler"

    def setup(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.nodes: dict[str, NodeState] = {}
        self.unschedulable: dict[tuple[str, str], None] = {}
        plane.informer("v1/nodes").on_change(self._on_node)
        plane.pods.on_change(self._on_pod)
        plane.informer("v1/persistentvolumeclaims").on_change(self._on_claim)
        plane.informer("v1/persistentvolumes").on_change(self._on_volume)
        self._volumes = VolumeView(
            plane.informer("v1/persistentvolumeclaims").objects,
            _VolumesByName(plane.informer("v1/persistentvolumes").objects),
        )

    def _retry_unschedulable(self) -> None:
        for key in list(self.unschedulable):
            self.plane.enqueue(self.name, key)

    def _on_node(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            if old is not None:
                self.nodes.pop(name_of(old), None)
            return
        state = self.nodes.get(name_of(new))
        if state is None:
            state = self.nodes[name_of(new)] = NodeState(new)
            for pod in self.plane.pods.by_index("node", name_of(new)):
                if _occupies_node(pod):
                    state.add(pod)
        else:
            state.node = new
        self._retry_unschedulable()

    def _on_pod(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        if old is not None and _occupies_node(old):
            state = self.nodes.get(old["spec"]["nodeName"])
            if state is not None:
                state.remove(old)
        if new is not None and _occupies_node(new):
            state = self.nodes.get(new["spec"]["nodeName"])
            if state is not None:
                state.add(new)
        if new is not None and _wants_scheduling(new):
            self.plane.enqueue(self.name, key_of(new))
        else:
            pod = new or old
            assert pod is not None
            self.unschedulable.pop(key_of(pod), None)
            if old is not None and _occupies_node(old) and (new is None or not _occupies_node(new)):
                self._retry_unschedulable()

    def _on_claim(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        claim = new or old
        assert claim is not None
        for pod in self.plane.pods.by_index("claim", key_of(claim)):
            if key_of(pod) in self.unschedulable:
                self.plane.enqueue(self.name, key_of(pod))

    def _on_volume(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        volume = new or old
        assert volume is not None
        for claim_key in self.plane.informer("v1/persistentvolumes").keys_for("claim", volume):
            for pod in self.plane.pods.by_index("claim", claim_key):
                if key_of(pod) in self.unschedulable:
                    self.plane.enqueue(self.name, key_of(pod))

    def reconcile(self, key: Hashable) -> list[Action]:
        ns, name = key  # type: ignore[misc]
        pod = self.plane.pods.get(ns, name)
        if pod is None or not _wants_scheduling(pod):
            self.unschedulable.pop((ns, name), None)
            return []
        nodes = sorted(self.nodes.values(), key=lambda s: name_of(s.node))
        decision = schedule(pod, nodes, self._volumes)
        if isinstance(decision, Bind):
            try:
                self.plane.api.bind(name, {"name": decision.node}, namespace=ns)
            except ApiError as err:
                if err.code in (404, 409):
                    return []
                raise
            self.unschedulable.pop((ns, name), None)
            return [
                Event(
                    object_ref(pod),
                    "Normal",
                    "Scheduled",
                    f"Successfully assigned {ns}/{name} to {decision.node}",
                    SCHEDULER_NAME,
                )
            ]
        self.unschedulable[(ns, name)] = None
        actions: list[Action] = []
        current = pod_condition(pod, "PodScheduled") or {}
        if current.get("status") != "False" or current.get("message") != decision.message:
            status = unschedulable_status(pod, decision.message, now_rfc3339(self.plane.now()))
            actions.append(Patch(PODS, namespace_of(pod), name, {"status": status}, "status"))
            actions.append(
                Event(
                    object_ref(pod), "Warning", "FailedScheduling", decision.message, SCHEDULER_NAME
                )
            )
        return actions

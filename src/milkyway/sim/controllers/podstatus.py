"""What a kubelet reports: a pod's ``status`` rendered from its simulated runtime state.

The kubelet shell keeps a :class:`PodRuntime` per pod and moves it through KWOK-like
stages; :func:`render_status` turns it into the exact fields clients read (phase,
conditions with stable transition times, podIP, containerStatuses with image, state,
lastState, restartCount, started, ready), and honours readiness gates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from milkyway.sim.controllers.objects import Obj


@dataclass
class ContainerRuntime:
    name: str
    image: str
    restart_count: int = 0
    started_at: str = ""
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    ready: bool = False
    terminated: dict[str, Any] | None = None
    last_terminated: dict[str, Any] | None = None

    def state(self) -> dict[str, Any]:
        if self.terminated is not None:
            return {"terminated": self.terminated}
        if self.waiting_reason:
            waiting = {"reason": self.waiting_reason}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            return {"waiting": waiting}
        return {"running": {"startedAt": self.started_at}}

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": f"sim://{self.image}" if self.started_at else "",
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": bool(self.started_at) and not self.waiting_reason and not self.terminated,
            "state": self.state(),
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
        }
        if self.started_at:
            out["containerID"] = f"sim://{self.name}-{self.restart_count}"
        return out


@dataclass
class PodRuntime:
    """The simulated runtime state of one pod on one node."""

    host_ip: str
    pod_ip: str = ""
    phase: str = "Pending"
    start_time: str = ""
    reason: str = ""
    message: str = ""
    containers: list[ContainerRuntime] = field(default_factory=list)
    init_containers: list[ContainerRuntime] = field(default_factory=list)

    @classmethod
    def for_pod(cls, pod: Obj, host_ip: str) -> PodRuntime:
        spec = pod.get("spec") or {}
        return cls(
            host_ip=host_ip,
            containers=[
                ContainerRuntime(c.get("name", ""), c.get("image", ""))
                for c in spec.get("containers") or []
            ],
            init_containers=[
                ContainerRuntime(c.get("name", ""), c.get("image", ""))
                for c in spec.get("initContainers") or []
            ],
        )

    def all_ready(self) -> bool:
        return bool(self.containers) and all(c.ready for c in self.containers)


def _condition(
    previous: dict[str, dict[str, Any]], type_: str, ok: bool, now: str, reason: str = ""
) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = previous.get(type_)
    since = old.get("lastTransitionTime") if old and old.get("status") == status else now
    cond: dict[str, Any] = {
        "type": type_,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if not ok and reason:
        cond["reason"] = reason
    return cond


def render_status(pod: Obj, runtime: PodRuntime, now: str) -> dict[str, Any]:
    """The full pod ``status`` for ``runtime``; conditions keep their transition times."""
    old = pod.get("status") or {}
    previous = {c.get("type", ""): c for c in old.get("conditions") or []}
    gates = [
        g.get("conditionType", "") for g in (pod.get("spec") or {}).get("readinessGates") or []
    ]
    gates_ok = all((previous.get(g) or {}).get("status") == "True" for g in gates)
    containers_ready = runtime.all_ready() and runtime.phase == "Running"
    done = runtime.phase in ("Succeeded", "Failed")
    not_ready = "PodCompleted" if done else "ContainersNotReady"
    conditions = [
        _condition(previous, "PodReadyToStartContainers", bool(runtime.pod_ip), now),
        _condition(previous, "Initialized", True, now),
        _condition(
            previous,
            "Ready",
            containers_ready and gates_ok,
            now,
            not_ready if not containers_ready else "ReadinessGatesNotReady",
        ),
        _condition(previous, "ContainersReady", containers_ready, now, not_ready),
        _condition(previous, "PodScheduled", True, now),
    ]
    # Conditions the kubelet does not own (readiness gates, conditions other controllers
    # write through pods/status) are kept, as a real kubelet's status manager keeps them.
    owned = {c["type"] for c in conditions}
    conditions += [c for kind, c in previous.items() if kind not in owned]
    status: dict[str, Any] = {
        "phase": runtime.phase,
        "conditions": conditions,
        "hostIP": runtime.host_ip,
        "hostIPs": [{"ip": runtime.host_ip}],
        "qosClass": old.get("qosClass") or _qos(pod),
        "containerStatuses": [c.status() for c in runtime.containers],
    }
    if runtime.init_containers:
        status["initContainerStatuses"] = [c.status() for c in runtime.init_containers]
    if runtime.pod_ip:
        status["podIP"] = runtime.pod_ip
        status["podIPs"] = [{"ip": runtime.pod_ip}]
    if runtime.start_time:
        status["startTime"] = runtime.start_time
    if runtime.reason:
        status["reason"] = runtime.reason
    if runtime.message:
        status["message"] = runtime.message
    return status


def _qos(pod: Obj) -> str:
    containers = (pod.get("spec") or {}).get("containers") or []
    requests = [(c.get("resources") or {}).get("requests") or {} for c in containers]
    limits = [(c.get("resources") or {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        lim.get("cpu")
        and lim.get("memory")
        and req.get("cpu", lim["cpu"]) == lim["cpu"]
        and req.get("memory", lim["memory"]) == lim["memory"]
        for req, lim in zip(requests, limits, strict=True)
    )
    return "Guaranteed" if guaranteed else "Burstable"


def unschedulable_status(pod: Obj, message: str, now: str) -> dict[str, Any]:
    """``PodScheduled=False`` with reason Unschedulable, as kube-scheduler writes it."""
    previous = {c.get("type", ""): c for c in (pod.get("status") or {}).get("conditions") or []}
    old = previous.get("PodScheduled") or {}
    since = old.get("lastTransitionTime") if old.get("status") == "False" else now
    return {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": since,
                "reason": "Unschedulable",
                "message": message,
            }
        ],
    }

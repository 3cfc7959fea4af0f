"""Simulated kubelets: KWOK-like pod stages on every simulated node, plus node heartbeats.

A pod bound to a node goes ContainerCreating (volumes mounted, images pulled) -> Running
-> Ready, each stage after a configurable, seeded-jittered delay stretched by the node's
slowness. Readiness gates, pod IPs, container statuses, graceful deletion (the kubelet
removes a terminating pod once its grace period, capped by the configured termination
delay, has passed), ``pods/log`` output, image pull failures and the container-level
faults (crash, crash loop, failed disk) are all rendered into the pod's status and
events, exactly where a real kubelet would put them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.controllers import completion
from milkyway.sim.controllers.actions import PODS, Action, Delete, Event, Patch, Requeue
from milkyway.sim.controllers.objects import (
    Obj,
    is_terminating,
    key_of,
    name_of,
    namespace_of,
    now_rfc3339,
    object_ref,
    pod_phase,
    uid_of,
)
from milkyway.sim.controllers.podstatus import PodRuntime, render_status
from milkyway.sim.controllers.runtime import ControlPlane, resource_name
from milkyway.sim.controllers.volumes import claim_names
from milkyway.sim.nodes import (
    LEASE_NAMESPACE,
    NodeSpec,
    lease_object,
    node_internal_ip,
    node_ip,
    node_object,
)
from milkyway.sim.process.runtime import ProcessRuntime

SOURCE = "kubelet"
_LEASES = "coordination.k8s.io/v1/leases"


@dataclass
class NodeAgent:
    """One simulated node's kubelet: alive or lost, and how slow."""

    name: str
    ip: str
    spec: NodeSpec
    alive: bool = True
    slowness: float = 1.0
    heartbeat: asyncio.TimerHandle | None = None


@dataclass
class PodState:
    uid: str
    runtime: PodRuntime
    stage: str = "volumes"
    due: float = 0.0
    ready_at: dict[str, float] = field(default_factory=dict)
    crash_loop: bool = False
    next_restart: float = 0.0
    terminate_at: float | None = None
    mount_warned: str = ""
    exit_at: float | None = None


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Kubelet:
    """All simulated kubelets of one cluster (one :class:`NodeAgent` per node)."""

    name = "kubelet"

    def __init__(
        self,
        nodes: list[NodeSpec],
        *,
        cluster_index: int = 0,
        process: ProcessRuntime | None = None,
    ) -> None:
        self.specs = list(nodes)
        self.process = process
        """Runs the pods whose images are all mapped as real processes (None: none)."""
        self.cluster_index = cluster_index
        self.agents: dict[str, NodeAgent] = {}
        self.states: dict[tuple[str, str], PodState] = {}
        self._next_ip = 0
        self._unregister = None

    # ------------------------------------------------------------------ setup

    def setup(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.config = plane.config
        self.rng = plane.config.rng(f"kubelet:{plane.api.name}")
        self._unregister = plane.api.register_kubelet()
        plane.pods.on_change(self._on_pod)
        plane.informer("v1/persistentvolumeclaims").on_change(self._on_claim)
        plane.informer("v1/persistentvolumes").on_change(self._on_volume)
        if self.process is not None:
            self.process.bind(plane.api, lambda ns, name: plane.enqueue(self.name, (ns, name)))
            self.process.on_event = lambda event: plane.apply(self.name, ("", ""), [event])
            plane.informer("v1/endpoints").on_change(self._on_endpoints)
        for index, spec in enumerate(self.specs):
            self.add_node(spec, index)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        for agent in self.agents.values():
            if agent.heartbeat is not None:
                agent.heartbeat.cancel()
        if self._unregister is not None:
            self._unregister()
            self._unregister = None

    def add_node(self, spec: NodeSpec, index: int | None = None) -> None:
        """Register a node: its Node object, its Lease, and a kubelet heartbeating it."""
        index = len(self.agents) if index is None else index
        ip = spec.ip or node_ip(index, self.cluster_index)
        api = self.plane.api
        try:
            node = api.create(node_object(spec, ip))
        except ApiError as err:
            if err.reason != "AlreadyExists":
                raise
            node = api.get("v1/nodes", spec.name)
        agent = NodeAgent(spec.name, node_internal_ip(node) or ip, spec)
        self.agents[spec.name] = agent
        self._heartbeat(agent)

    def _register(self, agent: NodeAgent) -> None:
        """A live kubelet whose Node object was deleted registers it again, as kubelets do."""
        if self.plane.get("v1/nodes", "", agent.name) is not None:
            return
        try:
            self.plane.api.create(node_object(agent.spec, agent.ip))
        except ApiError as err:
            if err.reason != "AlreadyExists":
                raise

    def _renew(self, agent: NodeAgent) -> None:
        api = self.plane.api
        try:
            api.patch(
                resource_name(("coordination.k8s.io", "v1", "leases")),
                agent.name,
                {"spec": {"renewTime": _micro_now(), "holderIdentity": agent.name}},
                namespace=LEASE_NAMESPACE,
            )
        except ApiError as err:
            if err.code != 404:
                raise
            api.create(lease_object(agent.name, _micro_now()), namespace=LEASE_NAMESPACE)

    def _heartbeat(self, agent: NodeAgent) -> None:
        if agent.alive:
            self._register(agent)
            self._renew(agent)
        loop = asyncio.get_running_loop()
        agent.heartbeat = loop.call_later(self.config.heartbeat_interval, self._heartbeat, agent)

    # ------------------------------------------------------------------ events in

    def _on_pod(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        assert pod is not None
        if new is None:
            self.states.pop(key_of(pod), None)
            if self.process is not None:
                self.process.forget(*key_of(pod))
            return
        if (new.get("spec") or {}).get("nodeName") in self.agents:
            self.plane.enqueue(self.name, key_of(new))

    def _on_claim(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        claim = new or old
        assert claim is not None
        for pod in self.plane.pods.by_index("claim", key_of(claim)):
            if (pod.get("spec") or {}).get("nodeName"):
                self.plane.enqueue(self.name, key_of(pod))

    def _on_volume(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        pv = new or old
        assert pv is not None
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if ref.get("name"):
            for pod in self.plane.pods.by_index("claim", (ref.get("namespace", ""), ref["name"])):
                if (pod.get("spec") or {}).get("nodeName"):
                    self.plane.enqueue(self.name, key_of(pod))

    def _on_endpoints(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        if self.process is not None:
            ns, name = key_of(new or old or {})
            self.process.endpoints_changed(new, ns, name)

    def wake_node(self, node: str) -> None:
        for pod in self.plane.pods.by_index("node", node):
            self.plane.enqueue(self.name, key_of(pod))

    # ------------------------------------------------------------------ the stages

    def _delay(self, base: float, agent: NodeAgent) -> float:
        return self.config.delay(base, self.rng, agent.slowness)

    def reconcile(self, key: Hashable) -> list[Action]:
        ns, name = key  # type: ignore[misc]
        pod = self.plane.pods.get(ns, name)
        if pod is None:
            self.states.pop((ns, name), None)
            if self.process is not None:
                self.process.forget(ns, name)
            return []
        agent = self.agents.get((pod.get("spec") or {}).get("nodeName", ""))
        if agent is None or not agent.alive:
            return []
        state = self.states.get((ns, name))
        if state is not None and state.uid != uid_of(pod):
            state = None
        now = time.monotonic()
        real = self.process is not None and self.process.runs(pod)
        if is_terminating(pod):
            if real:
                return self._terminate_process(pod, state)
            return self._terminate(pod, state, agent, now)
        if state is None:
            if pod_phase(pod) in ("Succeeded", "Failed"):
                return []
            state = PodState(uid_of(pod), PodRuntime.for_pod(pod, agent.ip))
            state.runtime.start_time = now_rfc3339(self.plane.now())
            self.states[(ns, name)] = state
        actions: list[Action] = []
        if real:
            self._advance_process(pod, state, actions)
        else:
            self._advance(pod, state, agent, now, actions)
        status = render_status(pod, state.runtime, now_rfc3339(self.plane.now()))
        if status != (pod.get("status") or {}):
            actions.insert(0, Patch(PODS, ns, name, {"status": status}, "status"))
        return actions

    def _event(self, pod: Obj, type_: str, reason: str, message: str) -> Event:
        return Event(object_ref(pod), type_, reason, message, SOURCE)

    def _advance(
        self, pod: Obj, state: PodState, agent: NodeAgent, now: float, actions: list[Action]
    ) -> None:
        rt = state.runtime
        ns, name = namespace_of(pod), name_of(pod)
        if state.stage == "volumes":
            problem = self._volume_problem(pod)
            if problem:
                if state.mount_warned != problem and problem.startswith("MountVolume"):
                    state.mount_warned = problem
                    actions.append(self._event(pod, "Warning", "FailedMount", problem))
                return
            state.stage = "creating"
            state.due = now + self._delay(self.config.delays.creating, agent)
        if state.stage in ("creating", "image"):
            if now < state.due:
                actions.append(Requeue(state.due - now))
                return
            policy = self.config.image_pull_fails
            failing = [c for c in rt.containers if policy is not None and policy(c.image)]
            if failing:
                for c in failing:
                    first = state.stage == "creating"
                    c.waiting_reason = "ErrImagePull" if first else "ImagePullBackOff"
                    c.waiting_message = (
                        f'failed to pull and unpack image "{c.image}": not found'
                        if first
                        else f'Back-off pulling image "{c.image}"'
                    )
                    actions.append(
                        self._event(
                            pod,
                            "Warning",
                            "Failed",
                            f'Failed to pull image "{c.image}": not found'
                            if first
                            else f'Back-off pulling image "{c.image}"',
                        )
                    )
                state.stage = "image"
                state.due = now + self.config.crash_backoff
                actions.append(Requeue(self.config.crash_backoff))
                return
            stamp = now_rfc3339(self.plane.now())
            rt.pod_ip = rt.pod_ip or self._allocate_ip()
            rt.phase = "Running"
            for c in rt.containers:
                c.waiting_reason = ""
                c.waiting_message = ""
                c.started_at = stamp
                state.ready_at[c.name] = now + self._delay(self.config.delays.ready, agent)
                self.plane.api.write_log(
                    name,
                    c.name,
                    f"{stamp} simulated container {c.name} started from image {c.image}",
                    namespace=ns,
                )
                if self.config.record_events:
                    actions.append(
                        self._event(pod, "Normal", "Started", f"Started container {c.name}")
                    )
            for c in rt.init_containers:
                c.waiting_reason = ""
                c.terminated = {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": stamp,
                    "finishedAt": stamp,
                }
            state.stage = "running"
        if state.stage == "running":
            failed = self._failed_disk(pod)
            if failed:
                self._fail(pod, state, failed, actions)
                return
            if state.crash_loop:
                if now >= state.next_restart:
                    self._crash(pod, state, now, actions, looping=True)
                    state.next_restart = now + self.config.crash_backoff
                actions.append(Requeue(max(0.0, state.next_restart - now)))
                return
            pending = []
            for c in rt.containers:
                due = state.ready_at.get(c.name, now)
                if not c.ready and c.terminated is None and not c.waiting_reason:
                    if due <= now:
                        c.ready = True
                    else:
                        pending.append(due - now)
            if pending:
                actions.append(Requeue(min(pending)))
            elif completion.runs_to_completion(pod):
                self._run_to_completion(pod, state, agent, now, actions)

    def _run_to_completion(
        self, pod: Obj, state: PodState, agent: NodeAgent, now: float, actions: list[Action]
    ) -> None:
        """Containers of a pod that runs to completion exit after their run time."""
        if state.exit_at is None:
            run = completion.run_seconds(pod, self.config.delays.running)
            state.exit_at = now + self._delay(run, agent) if run > 0 else now
        if now < state.exit_at:
            actions.append(Requeue(state.exit_at - now))
            return
        if completion.finish(pod, state.runtime, now_rfc3339(self.plane.now())):
            state.stage = "completed"
            return
        # An OnFailure pod's failed containers restart after the crash back-off.
        state.exit_at = now + self.config.crash_backoff
        actions.append(Requeue(self.config.crash_backoff))

    def _advance_process(self, pod: Obj, state: PodState, actions: list[Action]) -> None:
        """A pod of mapped images: the same volume checks, then real processes."""
        assert self.process is not None
        if state.stage == "failed":
            return
        problem = self._volume_problem(pod)
        if problem.startswith("MountVolume"):
            if state.stage == "volumes":
                if state.mount_warned != problem:
                    state.mount_warned = problem
                    actions.append(self._event(pod, "Warning", "FailedMount", problem))
                return
            self.process.fail_pod(namespace_of(pod), name_of(pod))
            self._fail(pod, state, problem, actions)
            return
        if problem:
            return
        state.stage = "running"
        self.process.advance(pod, state.runtime, actions)

    def _terminate_process(self, pod: Obj, state: PodState | None) -> list[Action]:
        """Graceful deletion of a process-backed pod: the kubelet removes the pod once
        every process has ended (SIGTERM, then SIGKILL after the grace period)."""
        assert self.process is not None
        ns, name = namespace_of(pod), name_of(pod)
        actions: list[Action] = []
        if state is not None and state.terminate_at is None:
            state.terminate_at = time.monotonic()
            for c in state.runtime.containers:
                if c.ready and self.config.record_events:
                    actions.append(
                        self._event(pod, "Normal", "Killing", f"Stopping container {c.name}")
                    )
                c.ready = False
        done = self.process.terminate(pod)
        if state is not None:
            status = render_status(pod, state.runtime, now_rfc3339(self.plane.now()))
            if status != (pod.get("status") or {}):
                actions.append(Patch(PODS, ns, name, {"status": status}, "status"))
        if not done:
            actions.append(Requeue(0.2))
            return actions
        self.states.pop((ns, name), None)
        actions.append(Delete(PODS, ns, name, grace_period_seconds=0, uid=uid_of(pod)))
        return actions

    def volume_failed(self, pv: str, failed: bool) -> None:
        """``fail-disk`` reaches the directory of a process-backed pod's volume too."""
        if self.process is not None:
            self.process.set_volume_failed(pv, failed)

    def _allocate_ip(self) -> str:
        self._next_ip += 1
        n = self._next_ip
        return f"10.{244 + self.cluster_index % 10}.{n // 250 % 256}.{n % 250 + 1}"

    # ------------------------------------------------------------------ volumes and disks

    def _volume_problem(self, pod: Obj) -> str:
        ns = namespace_of(pod)
        claims = self.plane.informer("v1/persistentvolumeclaims")
        volumes = self.plane.informer("v1/persistentvolumes")
        for claim_name in claim_names(pod):
            claim = claims.get(ns, claim_name)
            if claim is None:
                return f'persistentvolumeclaim "{claim_name}" not found'
            pv_name = (claim.get("spec") or {}).get("volumeName")
            if not pv_name or (claim.get("status") or {}).get("phase") != "Bound":
                return f'persistentvolumeclaim "{claim_name}" is not bound yet'
            pv = volumes.get("", pv_name)
            if pv is None:
                return f'persistentvolume "{pv_name}" not found'
            if (pv.get("status") or {}).get("phase") == "Failed":
                why = (pv.get("status") or {}).get("message") or "the disk has failed"
                return f'MountVolume.SetUp failed for volume "{pv_name}" : {why}'
        return ""

    def _failed_disk(self, pod: Obj) -> str:
        problem = self._volume_problem(pod)
        return problem if problem.startswith("MountVolume") else ""

    def _fail(self, pod: Obj, state: PodState, why: str, actions: list[Action]) -> None:
        stamp = now_rfc3339(self.plane.now())
        rt = state.runtime
        rt.phase = "Failed"
        rt.reason = "DiskFailure"
        rt.message = why
        for c in rt.containers:
            c.ready = False
            c.waiting_reason = ""
            c.terminated = {
                "exitCode": 1,
                "reason": "Error",
                "message": "input/output error",
                "startedAt": c.started_at or stamp,
                "finishedAt": stamp,
            }
            self.plane.api.write_log(
                name_of(pod), c.name, f"{stamp} I/O error: {why}", namespace=namespace_of(pod)
            )
            self.plane.api.stop_log(name_of(pod), c.name, namespace=namespace_of(pod))
        state.stage = "failed"
        actions.append(self._event(pod, "Warning", "DiskFailure", why))

    # ------------------------------------------------------------------ crashes

    def _crash(
        self,
        pod: Obj,
        state: PodState,
        now: float,
        actions: list[Action],
        *,
        looping: bool,
        container: str | None = None,
        down_for: float = 0.0,
    ) -> None:
        stamp = now_rfc3339(self.plane.now())
        for c in state.runtime.containers:
            if container is not None and c.name != container:
                continue
            c.last_terminated = {
                "exitCode": 1,
                "reason": "Error",
                "startedAt": c.started_at or stamp,
                "finishedAt": stamp,
            }
            c.restart_count += 1
            c.ready = False
            self.plane.api.write_log(
                name_of(pod),
                c.name,
                f"{stamp} simulated container {c.name} exited with code 1",
                namespace=namespace_of(pod),
            )
            self.plane.api.stop_log(name_of(pod), c.name, namespace=namespace_of(pod))
            if looping:
                c.waiting_reason = "CrashLoopBackOff"
                c.waiting_message = (
                    f"back-off {int(self.config.crash_backoff)}s restarting failed "
                    f"container={c.name} pod={name_of(pod)}_{namespace_of(pod)}"
                )
                actions.append(
                    self._event(
                        pod,
                        "Warning",
                        "BackOff",
                        f"Back-off restarting failed container {c.name} in pod "
                        f"{name_of(pod)}_{namespace_of(pod)}",
                    )
                )
            else:
                c.started_at = stamp
                state.ready_at[c.name] = now + down_for
                actions.append(
                    self._event(
                        pod, "Normal", "Started", f"Started container {c.name} after a crash"
                    )
                )

    def crash(self, namespace: str, name: str, container: str | None, down_for: float) -> None:
        """One crash: restartCount + 1, the container NotReady for ``down_for`` seconds."""
        state = self._running_state(namespace, name)
        pod = self.plane.pods.get(namespace, name)
        assert pod is not None
        names = [c.name for c in state.runtime.containers]
        if container is not None and container not in names:
            raise ValueError(
                f"container {container!r} is not in pod {namespace}/{name}; choose one of {names}"
            )
        actions: list[Action] = []
        self._crash(
            pod,
            state,
            time.monotonic(),
            actions,
            looping=False,
            container=container,
            down_for=down_for,
        )
        self.plane.apply(self.name, (namespace, name), actions)
        self.plane.run_one(self.name, (namespace, name))

    def set_crash_loop(self, namespace: str, name: str, on: bool) -> None:
        state = self._running_state(namespace, name)
        state.crash_loop = on
        now = time.monotonic()
        if on:
            state.next_restart = now
        else:
            for c in state.runtime.containers:
                c.waiting_reason = ""
                c.waiting_message = ""
                c.started_at = now_rfc3339(self.plane.now())
                state.ready_at[c.name] = now + self.config.delay(self.config.delays.ready, self.rng)
        self.plane.enqueue(self.name, (namespace, name))

    def _running_state(self, namespace: str, name: str) -> PodState:
        state = self.states.get((namespace, name))
        if state is None or state.stage != "running":
            raise ValueError(
                f"pod {namespace}/{name} has no running containers on a simulated node; "
                "wait until it is Running"
            )
        return state

    # ------------------------------------------------------------------ nodes

    def set_alive(self, node: str, alive: bool) -> None:
        agent = self._agent(node)
        agent.alive = alive
        if not alive and self.process is not None:
            self.process.kill_node(node)
        if alive:
            self._register(agent)
            self._renew(agent)
            self.wake_node(node)

    def set_slowness(self, node: str, factor: float) -> None:
        if factor < 1.0:
            raise ValueError(f"slowness factor {factor} must be 1 or more (1 = normal speed)")
        self._agent(node).slowness = factor

    def _agent(self, node: str) -> NodeAgent:
        agent = self.agents.get(node)
        if agent is None:
            raise ValueError(
                f"node {node!r} is not a simulated node; choose one of {sorted(self.agents)}"
            )
        return agent

    # ------------------------------------------------------------------ deletion

    def _terminate(
        self, pod: Obj, state: PodState | None, agent: NodeAgent, now: float
    ) -> list[Action]:
        ns, name = namespace_of(pod), name_of(pod)
        delete = Delete(PODS, ns, name, grace_period_seconds=0, uid=uid_of(pod))
        if state is None or state.runtime.phase != "Running":
            self.states.pop((ns, name), None)
            return [delete]
        actions: list[Action] = []
        if state.terminate_at is None:
            grace = float((pod.get("metadata") or {}).get("deletionGracePeriodSeconds") or 0)
            wait = min(grace, self._delay(self.config.delays.terminating, agent))
            state.terminate_at = now + wait
            for c in state.runtime.containers:
                c.ready = False
                if self.config.record_events:
                    actions.append(
                        self._event(pod, "Normal", "Killing", f"Stopping container {c.name}")
                    )
            status = render_status(pod, state.runtime, now_rfc3339(self.plane.now()))
            if status != (pod.get("status") or {}):
                actions.append(Patch(PODS, ns, name, {"status": status}, "status"))
        if now < state.terminate_at:
            actions.append(Requeue(state.terminate_at - now))
            return actions
        self.states.pop((ns, name), None)
        actions.append(delete)
        return actions

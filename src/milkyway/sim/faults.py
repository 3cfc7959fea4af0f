"""Fault injection: break a simulated cluster the ways real clusters break.

Every fault acts where the real failure would and is visible only through the API, as on
a real cluster: a crashed container shows ``restartCount`` and ``lastState`` and turns
NotReady; a crash loop shows ``CrashLoopBackOff`` and ``BackOff`` events; a lost node
stops heartbeating and the node lifecycle controller marks it ``Ready=Unknown``, taints
it and later evicts its pods; a failed disk marks its local PV ``Failed`` and fails the
pod using it; a filled disk (``fill-disk``) is a real file written into a process-backed
pod's size-limited volume; a slow node stretches every kubelet stage and carries a ``KubeletSlow``
condition; a cut-off cluster refuses connections or answers 503; API latency and error
rates affect HTTP clients. In-process controllers keep running through API faults: they
are the cluster's own control plane, it is the outside world that loses the cluster.

Faults with a duration lift themselves; any fault can be lifted by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from milkyway.sim.apiserver.errors import ApiError, internal_error, service_unavailable
from milkyway.sim.controllers.actions import NODES, PODS, PVS, Delete, Event, Patch
from milkyway.sim.controllers.objects import Obj, now_rfc3339, object_ref

if TYPE_CHECKING:
    from aiohttp import web

    from milkyway.sim.apiserver.server import ApiServer
    from milkyway.sim.controllers.kubelet import Kubelet
    from milkyway.sim.controllers.runtime import ControlPlane

ADMIN_PREFIX = "/_milkyway/"
KINDS = (
    "crash-container",
    "crash-loop",
    "kill-pod",
    "lose-node",
    "fail-disk",
    "fill-disk",
    "slow-node",
    "cut-off",
    "api-latency",
    "api-errors",
)
SLOW_CONDITION = "KubeletSlow"
SOURCE = "fault-injector"


@dataclass
class Fault:
    id: str
    kind: str
    cluster: str
    target: str
    params: dict[str, Any]
    started: str
    duration: float | None = None
    active: bool = True
    _undo: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)
    _timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "cluster": self.cluster,
            "target": self.target,
            "params": dict(self.params),
            "started": self.started,
            "duration": self.duration,
            "active": self.active,
        }


class ApiFaultState:
    """HTTP-level faults of one cluster, applied by the API server's request hook."""

    def __init__(self, seed: int | None = None) -> None:
        self.unavailable = False
        self.latency = 0.0
        self.error_rate = 0.0
        self.error_code = 500
        self._rng = random.Random(seed)

    async def hook(self, request: web.Request) -> None:
        if request.path.startswith(ADMIN_PREFIX):
            return
        if self.unavailable:
            raise service_unavailable("the cluster is cut off (simulated outage)")
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if self.error_rate > 0 and self._rng.random() < self.error_rate:
            if self.error_code == 503:
                raise service_unavailable("simulated API server error")
            if self.error_code == 429:
                raise ApiError(
                    429, "TooManyRequests", "simulated throttling", retry_after_seconds=1
                )
            raise internal_error("simulated API server error")


@dataclass
class ClusterTarget:
    """What the injector needs of one cluster."""

    name: str
    plane: ControlPlane
    kubelet: Kubelet
    server: ApiServer | None = None
    api_faults: ApiFaultState = field(default_factory=ApiFaultState)


class Faults:
    """Inject and lift faults on a set of simulated clusters (Python API and admin HTTP)."""

    def __init__(self) -> None:
        self.clusters: dict[str, ClusterTarget] = {}
        self.faults: dict[str, Fault] = {}
        self._ids = itertools.count(1)

    def register(self, target: ClusterTarget) -> None:
        self.clusters[target.name] = target
        if target.server is not None:
            target.server.request_hook = target.api_faults.hook

    def _target(self, cluster: str) -> ClusterTarget:
        if cluster not in self.clusters:
            raise ValueError(
                f"cluster {cluster!r} is not simulated here; choose one of {sorted(self.clusters)}"
            )
        return self.clusters[cluster]

    def active(self) -> list[Fault]:
        return [f for f in self.faults.values() if f.active]

    def _record(
        self,
        kind: str,
        target: ClusterTarget,
        what: str,
        params: dict[str, Any],
        duration: float | None,
        undo: Callable[[], Awaitable[None]] | None,
    ) -> Fault:
        fault = Fault(
            id=f"f{next(self._ids)}",
            kind=kind,
            cluster=target.name,
            target=what,
            params=params,
            started=now_rfc3339(target.plane.now()),
            duration=duration,
            active=undo is not None,
            _undo=undo,
        )
        self.faults[fault.id] = fault
        if undo is not None and duration is not None:
            if duration <= 0:
                raise ValueError(f"duration {duration} must be positive, or omitted to last")
            loop = asyncio.get_running_loop()
            fault._timer = loop.call_later(duration, lambda: loop.create_task(self.lift(fault.id)))
        return fault

    async def lift(self, fault_id: str) -> Fault:
        fault = self.faults.get(fault_id)
        if fault is None:
            raise ValueError(f"no fault {fault_id!r}; active: {[f.id for f in self.active()]}")
        if fault.active and fault._undo is not None:
            fault.active = False
            if fault._timer is not None:
                fault._timer.cancel()
            await fault._undo()
        return fault

    async def lift_all(self) -> list[Fault]:
        return [await self.lift(f.id) for f in self.active()]

    # ------------------------------------------------------------------ dispatch

    async def inject(self, kind: str, cluster: str, **params: Any) -> Fault:
        """Inject by name (the admin endpoint and the CLI use this)."""
        handlers: dict[str, Callable[..., Awaitable[Fault]]] = {
            "crash-container": self.crash_container,
            "crash-loop": self.crash_loop,
            "kill-pod": self.kill_pod,
            "lose-node": self.lose_node,
            "fail-disk": self.fail_disk,
            "fill-disk": self.fill_disk,
            "slow-node": self.slow_node,
            "cut-off": self.cut_off,
            "api-latency": self.api_latency,
            "api-errors": self.api_errors,
        }
        if kind not in handlers:
            raise ValueError(f"unknown fault kind {kind!r}; choose one of {', '.join(KINDS)}")
        handler = handlers[kind]
        accepted = {
            n: p for n, p in inspect.signature(handler).parameters.items() if n != "cluster"
        }
        unknown = sorted(set(params) - set(accepted))
        missing = sorted(
            n
            for n, p in accepted.items()
            if p.default is inspect.Parameter.empty and n not in params
        )
        if unknown or missing:
            problem = f"unknown parameter(s) {unknown}" if unknown else f"missing {missing}"
            raise ValueError(f"fault {kind}: {problem}; it takes {sorted(accepted)}")
        return await handler(cluster, **params)

    # ------------------------------------------------------------------ pods

    def _pod(self, target: ClusterTarget, namespace: str, pod: str) -> Obj:
        obj = target.plane.pods.get(namespace, pod)
        if obj is None:
            raise ValueError(f"pod {namespace}/{pod} not found in cluster {target.name}")
        return obj

    async def crash_container(
        self,
        cluster: str,
        pod: str,
        namespace: str = "default",
        container: str | None = None,
        down_for: float = 5.0,
    ) -> Fault:
        """The container exits once: restartCount + 1, NotReady for ``down_for`` seconds."""
        target = self._target(cluster)
        self._pod(target, namespace, pod)
        target.kubelet.crash(namespace, pod, container, down_for)
        params = {"container": container, "down_for": down_for}
        return self._record("crash-container", target, f"{namespace}/{pod}", params, None, None)

    async def crash_loop(
        self, cluster: str, pod: str, namespace: str = "default", duration: float | None = None
    ) -> Fault:
        target = self._target(cluster)
        self._pod(target, namespace, pod)
        target.kubelet.set_crash_loop(namespace, pod, True)

        async def undo() -> None:
            with contextlib.suppress(ValueError):
                target.kubelet.set_crash_loop(namespace, pod, False)

        return self._record("crash-loop", target, f"{namespace}/{pod}", {}, duration, undo)

    async def kill_pod(self, cluster: str, pod: str, namespace: str = "default") -> Fault:
        """The pod vanishes at once (grace 0), as when its node's runtime kills it."""
        target = self._target(cluster)
        obj = self._pod(target, namespace, pod)
        target.plane.apply(
            SOURCE,
            (namespace, pod),
            [
                Event(object_ref(obj), "Warning", "Killing", "Pod killed (injected fault)", SOURCE),
                Delete(PODS, namespace, pod, grace_period_seconds=0),
            ],
        )
        return self._record("kill-pod", target, f"{namespace}/{pod}", {}, None, None)

    # ------------------------------------------------------------------ nodes

    async def lose_node(self, cluster: str, node: str, duration: float | None = None) -> Fault:
        """The node's kubelet goes silent: NotReady after the grace period, pods evicted
        after the eviction timeout. Lifting brings the kubelet back."""
        target = self._target(cluster)
        target.kubelet.set_alive(node, False)

        async def undo() -> None:
            target.kubelet.set_alive(node, True)

        return self._record("lose-node", target, node, {}, duration, undo)

    async def slow_node(
        self, cluster: str, node: str, factor: float = 5.0, duration: float | None = None
    ) -> Fault:
        target = self._target(cluster)
        target.kubelet.set_slowness(node, factor)
        self._set_slow_condition(target, node, factor)

        async def undo() -> None:
            target.kubelet.set_slowness(node, 1.0)
            self._set_slow_condition(target, node, None)

        return self._record("slow-node", target, node, {"factor": factor}, duration, undo)

    def _set_slow_condition(self, target: ClusterTarget, node: str, factor: float | None) -> None:
        obj = target.plane.get("v1/nodes", "", node)
        if obj is None:
            return
        stamp = now_rfc3339(target.plane.now())
        conditions = [
            c
            for c in (obj.get("status") or {}).get("conditions") or []
            if c.get("type") != SLOW_CONDITION
        ]
        actions: list[Any] = []
        if factor is not None:
            conditions.append(
                {
                    "type": SLOW_CONDITION,
                    "status": "True",
                    "reason": "FaultInjected",
                    "message": f"kubelet operations take {factor:g}x longer",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            )
            actions.append(
                Event(
                    object_ref(obj),
                    "Warning",
                    "NodeSlow",
                    f"Node {node} is {factor:g}x slower",
                    SOURCE,
                )
            )
        actions.insert(0, Patch(NODES, "", node, {"status": {"conditions": conditions}}, "status"))
        target.plane.apply(SOURCE, ("", node), actions)

    # ------------------------------------------------------------------ disks

    async def fail_disk(
        self,
        cluster: str,
        volume: str | None = None,
        node: str | None = None,
        duration: float | None = None,
    ) -> Fault:
        """The disk behind a PersistentVolume (or every local PV of ``node``) fails: the PV
        turns ``Failed`` and the pod using it fails; new pods cannot mount it."""
        target = self._target(cluster)
        volumes = self._volumes(target, volume, node)
        message = "disk failure (injected fault)"

        def set_phase(failed: bool) -> None:
            actions: list[Any] = []
            for pv in volumes:
                current = target.plane.get("v1/persistentvolumes", "", pv)
                if current is None:
                    continue
                bound = bool((current.get("spec") or {}).get("claimRef"))
                status = (
                    {"phase": "Failed", "message": message}
                    if failed
                    else {"phase": "Bound" if bound else "Available", "message": None}
                )
                actions.append(Patch(PVS, "", pv, {"status": status}, "status"))
                if failed:
                    actions.append(
                        Event(object_ref(current), "Warning", "VolumeFailed", message, SOURCE)
                    )
            target.plane.apply(SOURCE, ("", "disk"), actions)

        set_phase(True)
        for pv in volumes:
            target.kubelet.volume_failed(pv, True)

        async def undo() -> None:
            set_phase(False)
            for pv in volumes:
                target.kubelet.volume_failed(pv, False)

        what = volume or f"node/{node}"
        return self._record("fail-disk", target, what, {"volumes": volumes}, duration, undo)

    async def fill_disk(
        self,
        cluster: str,
        pod: str,
        namespace: str = "default",
        volume: str | None = None,
        percent: float = 95.0,
        duration: float | None = None,
    ) -> Fault:
        """The data volume of a process-backed pod fills up: a file is really written into
        it until the volume is ``percent`` % used, so whatever measures the disk in the pod
        sees it. Lifting removes the file. Needs sized volumes (each a filesystem of its
        capacity): filling a directory of the machine's own disk is refused."""
        target = self._target(cluster)
        if not 0 < percent <= 100:
            raise ValueError(f"percent {percent} must be above 0 and at most 100")
        self._pod(target, namespace, pod)
        runtime = target.kubelet.process
        if runtime is None or not runtime.sized_volumes:
            raise ValueError(
                f"cluster {cluster} does not run pods as processes with sized volumes; "
                "start it with sized volumes (milkyway sim up --sized-volumes)"
            )
        pv = runtime.pod_volume(namespace, pod, volume)
        written = await asyncio.to_thread(runtime.fill_volume, pv, percent)

        async def undo() -> None:
            await asyncio.to_thread(runtime.drain_volume, pv)

        params = {"volume": pv, "percent": percent, "bytes": written}
        return self._record("fill-disk", target, f"{namespace}/{pod}", params, duration, undo)

    def _volumes(self, target: ClusterTarget, volume: str | None, node: str | None) -> list[str]:
        if (volume is None) == (node is None):
            raise ValueError("fail-disk needs exactly one of a volume name or a node")
        pvs = target.plane.informer("v1/persistentvolumes")
        if volume is not None:
            if pvs.get("", volume) is None:
                raise ValueError(f"persistentvolume {volume!r} not found in cluster {target.name}")
            return [volume]
        names = []
        for (_, name), pv in pvs.objects.items():
            terms = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get(
                "nodeSelectorTerms"
            ) or []
            for term in terms:
                for expr in term.get("matchExpressions") or []:
                    if expr.get("key") == "kubernetes.io/hostname" and node in (
                        expr.get("values") or []
                    ):
                        names.append(name)
        if not names:
            raise ValueError(
                f"node {node!r} has no local persistent volumes in cluster {target.name}"
            )
        return sorted(set(names))

    # ------------------------------------------------------------------ the API itself

    async def cut_off(
        self, cluster: str, mode: str = "refuse", duration: float | None = None
    ) -> Fault:
        """The cluster's API becomes unreachable: ``refuse`` closes its listening socket
        (connection refused), ``unavailable`` answers every request with 503. Either way the
        open connections break, watches included, as in a network partition."""
        target = self._target(cluster)
        if mode not in ("refuse", "unavailable"):
            raise ValueError(f"cut-off mode {mode!r} must be 'refuse' or 'unavailable'")
        target.api_faults.unavailable = True
        if target.server is not None:
            if mode == "refuse":
                await target.server.pause_listening()
            else:
                target.server.drop_connections()

        async def undo() -> None:
            target.api_faults.unavailable = False
            if mode == "refuse" and target.server is not None:
                await target.server.resume_listening()

        return self._record("cut-off", target, cluster, {"mode": mode}, duration, undo)

    async def api_latency(
        self, cluster: str, seconds: float, duration: float | None = None
    ) -> Fault:
        target = self._target(cluster)
        if seconds < 0:
            raise ValueError(f"latency {seconds} must be 0 or more seconds")
        previous = target.api_faults.latency
        target.api_faults.latency = seconds

        async def undo() -> None:
            target.api_faults.latency = previous

        return self._record("api-latency", target, cluster, {"seconds": seconds}, duration, undo)

    async def api_errors(
        self, cluster: str, rate: float, code: int = 500, duration: float | None = None
    ) -> Fault:
        target = self._target(cluster)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"error rate {rate} must be between 0 and 1")
        if code not in (429, 500, 503):
            raise ValueError(f"error code {code} must be 429, 500 or 503")
        previous = (target.api_faults.error_rate, target.api_faults.error_code)
        target.api_faults.error_rate = rate
        target.api_faults.error_code = code

        async def undo() -> None:
            target.api_faults.error_rate, target.api_faults.error_code = previous

        params = {"rate": rate, "code": code}
        return self._record("api-errors", target, cluster, params, duration, undo)

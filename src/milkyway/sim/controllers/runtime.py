"""The control plane of one simulated cluster: informers, work queue, controllers.

:class:`ControlPlane` subscribes its informers to the cluster's in-process API
(synchronous watch callbacks, so caches are exactly as fresh as the store), lets each
controller register indexes and event handlers, and runs one worker task that pops
``(controller, key)`` items and applies the actions the controller's pure core returns.
Writes go through :class:`~milkyway.sim.apiserver.api.ClusterAPI`, so controllers get
admission, validation, optimistic concurrency and GC exactly as clients do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.controllers.actions import (
    EVENTS,
    Action,
    Create,
    Delete,
    Event,
    Patch,
    Requeue,
    Resource,
)
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.controllers.informer import Informer, WorkQueue
from milkyway.sim.controllers.objects import Obj, controller_of, name_of, namespace_of, now_rfc3339

if TYPE_CHECKING:
    from milkyway.sim.apiserver.api import ClusterAPI

log = logging.getLogger(__name__)

_MAX_EVENT_KEYS = 20_000
_YIELD_EVERY = 64


def resource_name(resource: Resource) -> str:
    group, version, plural = resource
    return f"{group}/{version}/{plural}" if group else f"{version}/{plural}"


class Controller(Protocol):
    name: str

    def setup(self, plane: ControlPlane) -> None: ...

    def reconcile(self, key: Hashable) -> Iterable[Action]: ...


def _pod_owner(pod: Obj) -> list[str]:
    ref = controller_of(pod)
    return [ref["uid"]] if ref and ref.get("uid") else []


def _pod_node(pod: Obj) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if node else []


def _pod_claims(pod: Obj) -> list[tuple[str, str]]:
    ns = namespace_of(pod)
    return [
        (ns, v["persistentVolumeClaim"].get("claimName", ""))
        for v in (pod.get("spec") or {}).get("volumes") or []
        if v.get("persistentVolumeClaim")
    ]


def _namespace(obj: Obj) -> list[str]:
    return [namespace_of(obj)]


def _claim_stem(claim: Obj) -> list[tuple[str, str]]:
    """``data-web-2`` -> ``(ns, "data-web")``: a StatefulSet finds its claims by stem."""
    stem, _, ordinal = name_of(claim).rpartition("-")
    return [(namespace_of(claim), stem)] if stem and ordinal.isdigit() else []


def _pv_claim(pv: Obj) -> list[tuple[str, str]]:
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    return [(ref.get("namespace", ""), ref.get("name", ""))] if ref.get("name") else []


INFORMERS: dict[str, dict[str, Callable[[Obj], list[Any]]]] = {
    "v1/pods": {"owner": _pod_owner, "node": _pod_node, "claim": _pod_claims, "ns": _namespace},
    "v1/nodes": {},
    "v1/services": {"ns": _namespace},
    "v1/endpoints": {},
    "v1/persistentvolumeclaims": {"stem": _claim_stem},
    "v1/persistentvolumes": {"claim": _pv_claim},
    "apps/v1/statefulsets": {},
    "apps/v1/deployments": {},
    "apps/v1/replicasets": {"owner": _pod_owner},
    "apps/v1/controllerrevisions": {"owner": _pod_owner},
    "apps/v1/daemonsets": {},
    "v1/replicationcontrollers": {},
    "batch/v1/jobs": {"owner": _pod_owner},
    "batch/v1/cronjobs": {},
    "discovery.k8s.io/v1/endpointslices": {},
    "policy/v1/poddisruptionbudgets": {"ns": _namespace},
    "storage.k8s.io/v1/storageclasses": {},
    "coordination.k8s.io/v1/leases": {},
}


class ControlPlane:
    """Scheduler, kubelets and built-in controllers of one cluster, on one worker task."""

    def __init__(self, api: ClusterAPI, config: ControlPlaneConfig | None = None) -> None:
        self.api = api
        self.config = config or ControlPlaneConfig()
        self.informers: dict[str, Informer] = {}
        for resource, indexes in INFORMERS.items():
            informer = Informer(resource)
            for name, fn in indexes.items():
                informer.add_index(name, fn)
            self.informers[resource] = informer
        self.queue = WorkQueue()
        self.controllers: dict[str, Controller] = {}
        self.unserved: set[str] = set()
        """Resources this API version does not serve; their informers stay empty."""
        self.reconciles = 0
        self.reconcile_seconds = 0.0
        """CPU time spent deciding (cores and shells), apart from the API writes it leads to."""
        self.errors: list[str] = []
        self._events: OrderedDict[tuple[str, str, str], tuple[str, str, int]] = OrderedDict()
        self._event_seq = 0
        self._unsubscribe: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()

    # -------------------------------------------------------------- wiring

    def informer(self, resource: str) -> Informer:
        return self.informers[resource]

    @property
    def pods(self) -> Informer:
        return self.informers["v1/pods"]

    def add(self, controller: Controller) -> None:
        self.controllers[controller.name] = controller
        controller.setup(self)

    def enqueue(self, controller: str, key: Hashable, after: float = 0.0) -> None:
        self._idle.clear()
        if after > 0:
            self.queue.add_after(controller, key, after)
        else:
            self.queue.add(controller, key)

    def now(self) -> Any:
        return self.api.clock()

    def start(self) -> None:
        """Subscribe the informers (initial objects arrive as ADDED) and start the worker."""
        for resource, informer in self.informers.items():
            try:
                self._unsubscribe.append(self.api.subscribe(resource, informer.on_event))
            except ApiError as err:
                if err.code != 404:
                    raise
                self.unserved.add(resource)
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"control-plane:{self.api.name}"
        )

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self.queue.cancel_timers()
        for controller in self.controllers.values():
            stop = getattr(controller, "stop", None)
            if stop is not None:
                stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def settle(self, limit: float = 10.0) -> None:
        """Wait until the queue is empty (delayed re-adds may still be pending)."""
        deadline = time.monotonic() + limit
        while len(self.queue) or not self._idle.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"control plane of {self.api.name} still busy after {limit}s")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._idle.wait()

    # -------------------------------------------------------------- the worker

    async def _run(self) -> None:
        while True:
            self._idle.set()
            await self.queue.wait()
            done = 0
            while (item := self.queue.pop()) is not None:
                self._idle.clear()
                controller, key = item
                self.run_one(controller, key)
                done += 1
                if done % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(0)

    def run_one(self, controller: str, key: Hashable) -> None:
        self.reconciles += 1
        started = time.process_time()
        try:
            actions = list(self.controllers[controller].reconcile(key))
            self.reconcile_seconds += time.process_time() - started
        except Exception as exc:
            log.exception("%s: reconcile of %s failed", controller, key)
            self.errors.append(f"{controller} {key}: {exc!r}")
            self.enqueue(controller, key, after=1.0)
            return
        self.apply(controller, key, actions)

    def apply(self, controller: str, key: Hashable, actions: Iterable[Action]) -> None:
        for action in actions:
            try:
                self._apply_one(controller, key, action)
            except ApiError as err:
                if err.code == 404 or err.reason == "AlreadyExists":
                    continue
                if err.code == 409:
                    self.enqueue(controller, key)
                    return
                log.warning("%s: %s failed: %s", controller, type(action).__name__, err)
                self.errors.append(f"{controller} {key}: {err}")
                self.enqueue(controller, key, after=1.0)
                return

    def _apply_one(self, controller: str, key: Hashable, action: Action) -> None:
        api = self.api
        if isinstance(action, Create):
            api.create(action.obj, namespace=action.namespace or None)
        elif isinstance(action, Patch):
            api.patch(
                resource_name(action.resource),
                action.name,
                action.patch,
                namespace=action.namespace or None,
                subresource=action.subresource,
            )
        elif isinstance(action, Delete):
            api.delete(
                resource_name(action.resource),
                action.name,
                namespace=action.namespace or None,
                grace_period_seconds=action.grace_period_seconds,
                preconditions={"uid": action.uid} if action.uid else None,
            )
        elif isinstance(action, Event):
            self.record_event(action)
        elif isinstance(action, Requeue):
            self.enqueue(controller, action.key if action.key != ("", "") else key, action.after)

    # -------------------------------------------------------------- events

    def record_event(self, event: Event) -> None:
        """Write a core/v1 Event; a repeat of the same reason and message bumps ``count``."""
        if not self.config.record_events:
            return
        involved = event.involved
        ns = involved.get("namespace") or "default"
        now = now_rfc3339(self.now())
        dedup = (involved.get("uid", "") or involved.get("name", ""), event.reason, event.message)
        seen = self._events.get(dedup)
        if seen is not None:
            ev_ns, ev_name, count = seen
            try:
                self.api.patch(
                    resource_name(EVENTS),
                    ev_name,
                    {"count": count + 1, "lastTimestamp": now},
                    namespace=ev_ns,
                )
                self._events[dedup] = (ev_ns, ev_name, count + 1)
                self._events.move_to_end(dedup)
                return
            except ApiError:
                del self._events[dedup]
        self._event_seq += 1
        name = f"{involved.get('name', 'object')}.{time.time_ns() + self._event_seq:x}"
        obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {k: v for k, v in involved.items() if v},
            "reason": event.reason,
            "message": event.message,
            "type": event.type,
            "source": {"component": event.source} if event.source else {},
            "reportingComponent": event.source,
            "reportingInstance": "",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self.api.create(obj, namespace=ns)
        except ApiError as err:
            log.debug("event %s/%s not recorded: %s", ns, name, err)
            return
        self._events[dedup] = (ns, name, 1)
        if len(self._events) > _MAX_EVENT_KEYS:
            self._events.popitem(last=False)

    # -------------------------------------------------------------- helpers for shells

    def served(self, resource: str) -> bool:
        return resource not in self.unserved

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        return self.informers[resource].get(namespace, name)

    def describe(self, obj: Obj) -> str:
        return f"{namespace_of(obj)}/{name_of(obj)}"

"""What Milkyway owns in one member cluster, kept current by informers and indexed per
Application, so a reconcile reads WIRI from memory instead of listing the cluster.

Objects are selected by the ``app.kubernetes.io/managed-by=milkyway`` label the renderer
puts on everything (pods and claims inherit it from their templates), and watched in the
namespaces Milkyway manages in the cluster (one watch per kind and namespace) or, when the
cluster grants every namespace, across the cluster (one watch per kind). Nodes and
PersistentVolumes are watched unselected: a member on a dead node or failed disk is only
visible through them. Every change is reported as the ``(namespace, application)`` it
concerns; a Node's readiness change or a volume's phase change is reported for every
Application with a member there. A change of only heartbeat and bookkeeping fields
(:data:`VOLATILE_FIELDS`) updates the cache without being reported: nothing reading it
could decide differently. Of each object only what its readers use is kept (see
:mod:`milkyway.kube.projection`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from lightkube import AsyncClient
from lightkube.resources.apps_v1 import Deployment, ReplicaSet, StatefulSet
from lightkube.resources.core_v1 import (
    ConfigMap,
    Node,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    Service,
)
from lightkube.resources.policy_v1 import PodDisruptionBudget

from milkyway.kube.informer import Informer
from milkyway.kube.labels import APPLICATION, COMPONENT, MANAGED_BY, ZONE
from milkyway.kube.projection import project
from milkyway.kube.resources import as_dict

OWNED_KINDS: tuple[Any, ...] = (
    ConfigMap,
    Service,
    PodDisruptionBudget,
    PersistentVolumeClaim,
    StatefulSet,
    Deployment,
    ReplicaSet,
    Pod,
)
SELECTOR = {"app.kubernetes.io/managed-by": MANAGED_BY}

AppKey = tuple[str, str]
"""(namespace, application name)."""
ObjKey = tuple[str, str, str]
"""(apiVersion/kind, namespace, name)."""


def _key(obj: dict[str, Any]) -> ObjKey:
    metadata = obj["metadata"]
    return (f"{obj['apiVersion']}/{obj['kind']}", metadata.get("namespace") or "", metadata["name"])


def _app_of(obj: dict[str, Any]) -> AppKey | None:
    metadata = obj.get("metadata") or {}
    app = (metadata.get("labels") or {}).get(APPLICATION)
    if not app:
        return None
    return (metadata.get("namespace") or "", app)


class MemberCache:
    """Informers on one member cluster and an index of their objects by Application."""

    def __init__(
        self,
        cluster: str,
        client: AsyncClient,
        on_change: Callable[[str, AppKey], None],
        *,
        namespaces: Sequence[str] = (),
        retry_delay: float = 1.0,
    ) -> None:
        self.cluster = cluster
        self._client = client
        self._on_change = on_change
        self._by_app: dict[AppKey, dict[ObjKey, dict[str, Any]]] = {}
        self._users: dict[tuple[str, str], dict[AppKey, int]] = {}
        """("node" or "volume", name) to the Applications with a pod on that node or a
        claim bound to that volume (and how many): a Node or volume change wakes up
        its users without a scan of every object in the cluster."""
        self.nodes: dict[str, dict[str, Any]] = {}
        self.volumes: dict[str, dict[str, Any]] = {}
        self.namespaces: tuple[str, ...] = tuple(dict.fromkeys(namespaces))
        """Where the owned kinds are watched; empty: across the cluster."""
        self._informers = [
            Informer(
                client,
                kind,
                on_change=self._owned_changed,
                namespace=namespace,
                labels=SELECTOR,
                retry_delay=retry_delay,
                transform=project,
                on_synced=self._resynced,
            )
            for kind in OWNED_KINDS
            for namespace in (self.namespaces or (None,))
        ]
        self._nodes_informer = Informer(
            client,
            Node,
            on_change=self._node_changed,
            retry_delay=retry_delay,
            transform=project,
            on_synced=self._resynced,
        )
        self._informers.append(self._nodes_informer)
        self._informers.append(
            Informer(
                client,
                PersistentVolume,
                on_change=self._volume_changed,
                retry_delay=retry_delay,
                transform=project,
                on_synced=self._resynced,
            )
        )
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(i.run(), name=f"informer-{self.cluster}-{i._resource.__name__}")
            for i in self._informers
        ]

    def cancel(self) -> None:
        """Ask every informer to stop, without waiting (see :meth:`stop`)."""
        for task in self._tasks:
            task.cancel()

    async def stop(self) -> None:
        self.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    @property
    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self._informers)

    async def wait_synced(self, within: float) -> None:
        async with asyncio.timeout(within):
            await asyncio.gather(*(i.synced.wait() for i in self._informers))

    def caches(self) -> dict[str, dict[Any, Any]]:
        """Each informer's cache by the kind it holds (what the heap report sums)."""
        return {
            i._resource.__name__ + (f" in {i._namespace}" if i._namespace else ""): i.cache
            for i in self._informers
        }

    def node_counts(self) -> tuple[int, int] | None:
        """``(Ready, all)`` Nodes of the cluster; ``None`` until the Nodes are mirrored
        (or while their informer retries)."""
        if not self._nodes_informer.synced.is_set():
            return None
        ready = sum(1 for n in self.nodes.values() if _ready(n) == "True")
        return ready, len(self.nodes)

    def applications(self) -> list[AppKey]:
        return list(self._by_app)

    def objects(self, namespace: str, application: str) -> list[dict[str, Any]]:
        """Every owned object of the Application in this cluster."""
        return list(self._by_app.get((namespace, application), {}).values())

    def pods(self, namespace: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        """The pods of ``namespace`` carrying every label of ``selector``, which names
        their Application (the cache is indexed per Application)."""
        application = selector.get(APPLICATION)
        if not application:
            raise ValueError(f"a pod selector names its Application ({APPLICATION}): {selector}")
        return [
            obj
            for obj in self._by_app.get((namespace, application), {}).values()
            if obj["kind"] == "Pod"
            and all((obj["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        ]

    def zone_objects(
        self, namespace: str, application: str, component: str, zone: str
    ) -> list[dict[str, Any]]:
        """The objects of one component in one zone, plus the Nodes and PVs they use."""
        selected = [
            obj
            for obj in self._by_app.get((namespace, application), {}).values()
            if (labels := obj["metadata"].get("labels") or {}).get(COMPONENT) == component
            and labels.get(ZONE) == zone
        ]
        return [*selected, *self._referenced(selected)]

    def _referenced(self, objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        found: dict[ObjKey, dict[str, Any]] = {}
        for obj in objects:
            if obj["kind"] == "Pod":
                node = (obj.get("spec") or {}).get("nodeName")
                if node and node in self.nodes:
                    found[_key(self.nodes[node])] = self.nodes[node]
            elif obj["kind"] == "PersistentVolumeClaim":
                volume = (obj.get("spec") or {}).get("volumeName")
                if volume and volume in self.volumes:
                    found[_key(self.volumes[volume])] = self.volumes[volume]
        if self.nodes and not any(k[0].endswith("/Node") for k in found):
            # observe_zone reads "no Nodes at all" as "node health unknown"; with Nodes
            # known, a pod whose node is absent from them is on a deleted node.
            first = next(iter(self.nodes.values()))
            found[_key(first)] = first
        return list(found.values())

    def _owned_changed(self, event: str, obj: Any) -> None:
        data = as_dict(obj)
        app = _app_of(data)
        if app is None:
            return
        index = self._by_app.setdefault(app, {})
        key = _key(data)
        before = index.get(key)
        if before is not None:
            self._unuse(app, before)
        if event == "DELETED":
            index.pop(key, None)
            if not index:
                del self._by_app[app]
        else:
            index[key] = data
            self._use(app, data)
        if event == "DELETED" or before is None or relevant(before) != relevant(data):
            self._on_change(self.cluster, app)

    def _node_changed(self, event: str, obj: Any) -> None:
        data = as_dict(obj)
        name = data["metadata"]["name"]
        before = self.nodes.get(name)
        if event == "DELETED":
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = data
        if event == "DELETED" or before is None or _ready(before) != _ready(data):
            self._notify(("node", name))

    def _volume_changed(self, event: str, obj: Any) -> None:
        data = as_dict(obj)
        name = data["metadata"]["name"]
        before = self.volumes.get(name)
        if event == "DELETED":
            self.volumes.pop(name, None)
        else:
            self.volumes[name] = data
        phase = (data.get("status") or {}).get("phase")
        if (
            event == "DELETED"
            or before is None
            or (before.get("status") or {}).get("phase") != phase
        ):
            self._notify(("volume", name))

    def _resynced(self) -> None:
        """Every informer mirrors the cluster again after a failure: wake every
        Application with objects here, which were seen as unobserved meanwhile (a listing
        that changed nothing tells no one otherwise)."""
        if self.synced:
            for app in list(self._by_app):
                self._on_change(self.cluster, app)

    def _notify(self, used: tuple[str, str]) -> None:
        for app in list(self._users.get(used, ())):
            self._on_change(self.cluster, app)

    def _use(self, app: AppKey, obj: dict[str, Any]) -> None:
        for used in _uses(obj):
            users = self._users.setdefault(used, {})
            users[app] = users.get(app, 0) + 1

    def _unuse(self, app: AppKey, obj: dict[str, Any]) -> None:
        for used in _uses(obj):
            users = self._users.get(used, {})
            count = users.get(app, 0) - 1
            if count > 0:
                users[app] = count
            else:
                users.pop(app, None)
                if not users:
                    self._users.pop(used, None)


def _uses(obj: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The Node a pod runs on, the volume a claim is bound to."""
    spec = obj.get("spec") or {}
    if obj["kind"] == "Pod" and spec.get("nodeName"):
        return (("node", spec["nodeName"]),)
    if obj["kind"] == "PersistentVolumeClaim" and spec.get("volumeName"):
        return (("volume", spec["volumeName"]),)
    return ()


VOLATILE_FIELDS = frozenset(
    {"resourceVersion", "managedFields", "lastHeartbeatTime", "lastProbeTime", "lastUpdateTime"}
)
"""Fields rewritten by heartbeats and bookkeeping that say nothing about the object's
state: a change of only these does not wake the Application up."""


def relevant(obj: Any) -> Any:
    """``obj`` without its volatile fields: two versions that compare equal here are the
    same to every reader of the cache (readiness, phase, deletion, revisions, hashes)."""
    if isinstance(obj, dict):
        return {k: relevant(v) for k, v in obj.items() if k not in VOLATILE_FIELDS}
    if isinstance(obj, list):
        return [relevant(v) for v in obj]
    return obj


def _ready(node: dict[str, Any]) -> str | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status")
    return None

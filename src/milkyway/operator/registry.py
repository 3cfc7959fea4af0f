"""The cluster registry: one connection per member cluster, from its ``Cluster`` resource.

A ``Cluster`` names a Secret holding a kubeconfig. The registry builds a lightkube client
from it (the context named like the Cluster if the kubeconfig has one, else its current
context), keeps the engine's ``clients`` mapping current (tasks address clusters by
Cluster name), starts a :class:`MemberCache` on the cluster, and heartbeats it with
``GET /version``. The result is written to the Cluster's status (reachable, version, last
heartbeat, a ``Ready`` condition saying why not) and reported to the operator, which
re-queues the Applications that have a zone there: their flows wait while the cluster is
unreachable, and resume when it comes back. A change of a Cluster itself (new, gone, a
new spec) is reported apart: it may move any Application's zones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from lightkube import ApiError, AsyncClient

from milkyway.kube.errors import TRANSPORT_ERRORS
from milkyway.kube.informer import Informer
from milkyway.kube.member_cache import AppKey, MemberCache
from milkyway.kube.members import ClusterAccessError, client_from_secret, secret_ref
from milkyway.kube.reachability import ReachabilityLog
from milkyway.kube.resources import CLUSTER, as_dict, plain
from milkyway.kube.version import Unreachable, server_version
from milkyway.operator import metrics
from milkyway.operator.status_writer import StatusConflict, StatusWriter, condition, now_rfc3339

log = logging.getLogger(__name__)


@dataclass
class MemberCluster:
    """What the registry knows of one member cluster."""

    name: str
    resource: dict[str, Any]
    client: AsyncClient | None = None
    cache: MemberCache | None = None
    reachable: bool = False
    version: str | None = None
    reason: str = "Connecting"
    message: str = ""
    last_heartbeat: str | None = None
    missed: int = 0
    """Heartbeats missed in a row."""
    secret_ref: tuple[str, str, str] | None = None
    namespaces: tuple[str, ...] = ()
    """The namespaces the Cluster says Milkyway manages there (empty: all)."""
    heartbeat: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def zone(self) -> str:
        return str((self.resource.get("spec") or {}).get("zone", ""))

    @property
    def region(self) -> str:
        return str((self.resource.get("spec") or {}).get("region", ""))


class ClusterRegistry:
    """Watches Cluster resources and keeps a live connection to each member cluster."""

    def __init__(
        self,
        client: AsyncClient,
        clients: MutableMapping[str, Any],
        *,
        on_member_change: Callable[[str, AppKey], None],
        on_cluster_change: Callable[[str], None],
        on_reachability_change: Callable[[str], None] | None = None,
        heartbeat_interval: float = 10.0,
        heartbeat_timeout: float = 5.0,
        unreachable_after: int = 2,
        client_timeout: float = 30.0,
        reachability: ReachabilityLog | None = None,
        publishes: Callable[[], bool] = lambda: True,
    ) -> None:
        self._client = client
        self._reachability = reachability
        self._publishes = publishes
        """Whether this process writes the Clusters' status: sharded replicas all probe
        the clusters (each needs to know), only the leader reports."""
        self.clients = clients
        self._on_member_change = on_member_change
        self._on_cluster_change = on_cluster_change
        self._on_reachability_change = on_reachability_change or on_cluster_change
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        if unreachable_after < 1:
            raise ValueError(f"unreachable_after must be at least 1, got {unreachable_after}")
        self.unreachable_after = unreachable_after
        """Heartbeats missed in a row before a reachable cluster counts as unreachable: one
        late answer (an API server's leader election, a pause of its process) must not
        make every Application on the cluster rewrite its status twice and its flows
        wait."""
        self.client_timeout = client_timeout
        self.members: dict[str, MemberCluster] = {}
        self._status = StatusWriter(client, CLUSTER)
        self._dirty: asyncio.Queue[str] = asyncio.Queue()
        self.informer = Informer(
            client,
            CLUSTER,
            on_change=self._cluster_event,
            transform=plain,
            reachability=reachability,
        )

    # --- reading ----------------------------------------------------------------------

    def get(self, name: str) -> MemberCluster | None:
        return self.members.get(name)

    def resources(self) -> list[dict[str, Any]]:
        """Every Cluster resource known (from the informer's cache)."""
        return [as_dict(obj) for obj in self.informer.cache.values()]

    # --- running ----------------------------------------------------------------------

    async def run(self) -> None:
        """Follow Cluster resources until cancelled; then close every connection."""
        watch = asyncio.create_task(self.informer.run(), name="informer-clusters")
        try:
            while True:
                name = await self._dirty.get()
                await self._sync(name)
        finally:
            # Everything is told to stop before anything is awaited: a second
            # cancellation while awaiting must not leave heartbeats or informers running.
            watch.cancel()
            for member in self.members.values():
                if member.heartbeat is not None:
                    member.heartbeat.cancel()
                if member.cache is not None:
                    member.cache.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            for name in list(self.members):
                await self._drop(name)

    def _cluster_event(self, event: str, obj: Any) -> None:
        self._dirty.put_nowait(as_dict(obj)["metadata"]["name"])

    async def _sync(self, name: str) -> None:
        obj = self.informer.cache.get(("", name))
        if obj is None:
            await self._drop(name)
            self._on_cluster_change(name)
            return
        resource = as_dict(obj)
        member = self.members.get(name)
        if member is None:
            member = self.members[name] = MemberCluster(name, {})
            log.info("cluster %s registered (zone %s)", name, resource["spec"].get("zone"))
        spec_changed = member.resource.get("spec") != resource.get("spec")
        member.resource = resource
        ref = secret_ref(resource)
        namespaces = tuple((resource.get("spec") or {}).get("namespaces") or ())
        if member.secret_ref != ref or member.client is None or member.namespaces != namespaces:
            await self._disconnect(member)
            member.secret_ref = ref
            member.namespaces = namespaces
            await self._connect(member)
            spec_changed = True
        if member.heartbeat is None or member.heartbeat.done():
            member.heartbeat = asyncio.create_task(self._heartbeats(member), name=f"hb-{name}")
        if spec_changed:
            # Our own status writes come back as events too; only a new spec matters.
            self._on_cluster_change(name)

    async def _connect(self, member: MemberCluster) -> None:
        assert member.secret_ref is not None
        try:
            member.client = await client_from_secret(
                self._client, member.name, member.secret_ref, request_timeout=self.client_timeout
            )
        except ClusterAccessError as exc:
            member.reason = exc.reason
            member.message = str(exc)
            member.reachable = False
            return
        member.cache = MemberCache(
            member.name, member.client, self._on_member_change, namespaces=member.namespaces
        )
        member.cache.start()
        self.clients[member.name] = member.client
        member.reason = "Connecting"
        member.message = ""

    async def _disconnect(self, member: MemberCluster) -> None:
        self.clients.pop(member.name, None)
        if member.cache is not None:
            await member.cache.stop()
            member.cache = None
        if member.client is not None:
            with contextlib.suppress(Exception):
                await member.client.close()
            member.client = None

    async def _drop(self, name: str) -> None:
        member = self.members.pop(name, None)
        if member is None:
            return
        if member.heartbeat is not None:
            member.heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await member.heartbeat
        await self._disconnect(member)
        log.info("cluster %s removed", name)

    async def _heartbeats(self, member: MemberCluster) -> None:
        while True:
            await self.heartbeat(member)
            await asyncio.sleep(self.heartbeat_interval)

    async def heartbeat(self, member: MemberCluster) -> None:
        """One heartbeat: probe the cluster, update the registry and the Cluster status."""
        was = member.reachable
        if member.client is None and member.secret_ref is not None:
            await self._connect(member)
        if member.client is not None:
            try:
                member.version = await server_version(member.client, self.heartbeat_timeout)
                member.reachable = True
                member.missed = 0
                member.reason = "Heartbeat"
                member.message = f"API server {member.version} answers"
                member.last_heartbeat = now_rfc3339()
            except Unreachable as exc:
                member.missed += 1
                if member.reachable and member.missed < self.unreachable_after:
                    left = self.unreachable_after - member.missed
                    member.message = (
                        f"GET /version failed: {exc}; unreachable after {left} more missed "
                        "heartbeat(s)"
                    )
                else:
                    member.reachable = False
                    member.reason = "Unreachable"
                    member.message = f"GET /version failed: {exc}"
        metrics.CLUSTER_REACHABLE.labels(member.name).set(1 if member.reachable else 0)
        if was != member.reachable:
            if member.reachable:
                log.info("cluster %s is reachable (%s)", member.name, member.version)
            else:
                log.warning("cluster %s is unreachable: %s", member.name, member.message)
            self._on_reachability_change(member.name)
        await self._write_status(member)

    async def _write_status(self, member: MemberCluster) -> None:
        if not self._publishes():
            return
        status: dict[str, Any] = {
            "reachable": member.reachable,
            "version": member.version,
            "lastHeartbeatTime": member.last_heartbeat,
            "conditions": [condition("Ready", member.reachable, member.reason, member.message)],
        }
        counts = member.cache.node_counts() if member.cache is not None else None
        if counts is not None:
            status["nodes"] = {"ready": counts[0], "total": counts[1]}
        obj = self.informer.cache.get(("", member.name))
        if obj is None:
            return
        try:
            await self._status.write(as_dict(obj), status)
        except StatusConflict:
            fresh = await self._client.get(CLUSTER, member.name)
            with contextlib.suppress(StatusConflict):
                await self._status.write(as_dict(fresh), status)
        except (ApiError, *TRANSPORT_ERRORS) as exc:
            if self._reachability is None or not self._reachability.failed(
                exc, f"writing the status of Cluster {member.name}"
            ):
                log.warning("writing status of cluster %s failed: %s", member.name, exc)

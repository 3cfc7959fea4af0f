"""The whole system on simulated clusters: a management cluster, member clusters in two
regions, the operator in this process, and helpers to watch what it does.

Timings are the simulator's fast ones and the operator's heartbeats and polls are short,
so a provisioning takes seconds. Each test gets its own clusters (free ports, its own
kubeconfig): tests never share state.
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.resources.apps_v1 import StatefulSet
from lightkube.resources.core_v1 import ConfigMap, PersistentVolumeClaim, Pod

from milkyway.cli.app_commands import apply_documents, edit_application, flow_summary
from milkyway.cli.demo import (
    MemberCluster,
    is_ready,
    not_ready_reason,
    prepare_members,
    register_members,
)
from milkyway.kube.resources import APPLICATION, FLOWRUN
from milkyway.operator.crd_install import install_crds
from milkyway.operator.manager import Operator, OperatorSettings
from milkyway.sim import monitor
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig

EXAMPLES = Path(__file__).parents[2] / "examples"
MANAGEMENT = "mgmt"
MEMBERS = (
    MemberCluster("na-phx", "NA", "phx"),
    MemberCluster("na-slc", "NA", "slc"),
    MemberCluster("eu-ams", "EU", "ams"),
)
APP_LABEL = "milkyway.ebay.com/application"
COMPONENT_LABEL = "milkyway.ebay.com/component"
ZONE_LABEL = "milkyway.ebay.com/zone"


def unfinished_steps(run: Mapping[str, Any]) -> str:
    """What each unfinished step of a stored run last said: why a run is stuck."""
    nodes = (run.get("status") or {}).get("nodes") or {}
    return "\n".join(
        f"  {node_id}: {json.dumps(node, default=str)[:600]}"
        for node_id, node in nodes.items()
        if node.get("phase") not in ("Succeeded", "Failed", "Skipped", "Omitted", "Cancelled")
    )


def operator_settings(**overrides: Any) -> OperatorSettings:
    """Short timings for tests: heartbeats, engine polls and resyncs within a second."""
    values: dict[str, Any] = {
        "leader_election": False,
        "heartbeat_interval": 0.5,
        "heartbeat_timeout": 5.0,
        "engine_poll_interval": 0.1,
        "flow_lease_seconds": 3.0,
        "resync_period": 5.0,
    }
    values.update(overrides)
    return OperatorSettings(**values)


@dataclass
class World:
    """Simulated clusters with the operator running; what tests act on and look at."""

    sim: SimulatedClusters
    control: ControlledClusters
    client: AsyncClient
    members: tuple[MemberCluster, ...]
    member_clients: dict[str, AsyncClient] = field(default_factory=dict)
    operator: Operator | None = None
    operator_task: asyncio.Task[None] | None = None
    _unsubscribes: list[Callable[[], None]] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return Path(self.sim.kubeconfig_path)

    def cluster_of(self, zone: str) -> str:
        return next(m.name for m in self.members if m.zone == zone)

    async def start_operator(self, **overrides: Any) -> Operator:
        operator = Operator(self.kubeconfig, MANAGEMENT, operator_settings(**overrides))
        self.operator = operator
        self.operator_task = asyncio.create_task(operator.run_forever())
        await operator.wait_until_leading(30)
        return operator

    async def stop_operator(self) -> None:
        if self.operator_task is not None:
            self.operator_task.cancel()
            done, _ = await asyncio.wait({self.operator_task}, timeout=20)
            if not done:
                warnings.warn("the operator did not stop within 20 s of cancellation", stacklevel=1)
            self.operator_task = None
            self.operator = None

    async def apply(self, text: str) -> list[tuple[str, str]]:
        """``milkyway apply``'s path: validate, then server-side apply; (namespace, name)
        of each Application."""
        results = await apply_documents(self.client, text, "default")
        return [tuple(key.split("/", 1)) for kind, key, _ in results if kind == "Application"]  # type: ignore[misc]

    async def app(self, namespace: str, name: str) -> dict[str, Any]:
        return dict((await self.client.get(APPLICATION, name, namespace=namespace)).to_dict())

    async def edit(self, namespace: str, name: str, edit: Callable[[dict[str, Any]], str]) -> None:
        await edit_application(self.client, name, namespace, edit)

    async def wait_ready(self, namespace: str, name: str, within: float = 90) -> dict[str, Any]:
        """The Application once Ready for its current generation with no flow running;
        fails naming its state after ``within`` seconds."""
        deadline = time.monotonic() + within
        obj: dict[str, Any] = {}
        while time.monotonic() < deadline:
            obj = await self.app(namespace, name)
            settled = is_ready(obj) and not (obj.get("status") or {}).get("currentFlow")
            if settled and not await self.unfinished_runs(namespace, name):
                return obj
            await asyncio.sleep(0.2)
        raise AssertionError(
            f"{not_ready_reason(obj)}; status {obj.get('status')}\n{await self.explain()}"
        )

    async def wait_for(
        self, check: Callable[[], Any], what: str, within: float = 60, every: float = 0.2
    ) -> Any:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(every)
        explained = await self.explain()
        raise AssertionError(f"timed out after {within}s waiting for {what}\n{explained}")

    async def explain(self) -> str:
        """Every flow run not finished and what each of its unfinished steps last said: what
        a timed-out wait was stuck behind, in the failure message itself."""
        lines = []
        async for run in self.client.list(FLOWRUN, namespace="*"):
            item = dict(run.to_dict())
            status = item.get("status") or {}
            if status.get("phase") in ("Succeeded", "Failed", "Cancelled"):
                continue
            phase, progress, now = flow_summary(item)
            lines.append(f"run {item['metadata']['name']} {phase} {progress} now: {now or '-'}")
            lines.append(unfinished_steps(item))
        return "\n".join(lines) or "no flow run unfinished"

    async def runs(self, namespace: str, name: str) -> list[dict[str, Any]]:
        items = [
            dict(r.to_dict())
            async for r in self.client.list(FLOWRUN, namespace=namespace, labels={APP_LABEL: name})
        ]
        return sorted(items, key=lambda r: r["metadata"].get("creationTimestamp") or "")

    async def unfinished_runs(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return [
            r
            for r in await self.runs(namespace, name)
            if (r.get("status") or {}).get("phase") not in ("Succeeded", "Failed", "Cancelled")
        ]

    def member(self, cluster: str) -> AsyncClient:
        if cluster not in self.member_clients:
            config = KubeConfig.from_file(self.kubeconfig).get(cluster)
            self.member_clients[cluster] = AsyncClient(config)
        return self.member_clients[cluster]

    async def pods(
        self, cluster: str, namespace: str, labels: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        client = self.member(cluster)
        return [
            dict(p.to_dict())
            async for p in client.list(Pod, namespace=namespace, labels=dict(labels))
        ]

    async def owned(self, cluster: str, namespace: str, app: str) -> list[str]:
        """Kinds and names of every object of ``app`` left in ``cluster``."""
        client = self.member(cluster)
        found: list[str] = []
        for kind in (StatefulSet, Pod, ConfigMap, PersistentVolumeClaim):
            try:
                async for obj in client.list(kind, namespace=namespace, labels={APP_LABEL: app}):
                    found.append(f"{kind.__name__}/{obj.metadata.name}")
            except ApiError as exc:
                if exc.status.code != 404:
                    raise
        return found

    def tally(
        self, labels: Mapping[str, str], clusters: Iterable[str] | None = None
    ) -> monitor.Tally:
        """A readiness tally over the pods matching ``labels`` in ``clusters`` (all members
        by default), fed at every transition by the simulator."""
        tally = monitor.Tally(selector=dict(labels))
        for name in clusters or [m.name for m in self.members]:
            unsubscribe = monitor.subscribe(self.sim[name], tally)
            self._unsubscribes.append(unsubscribe)
        return tally

    async def close(self) -> None:
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        await self.stop_operator()
        for client in self.member_clients.values():
            await client.close()


@pytest.fixture
async def clusters(tmp_path: Path) -> AsyncIterator[World]:
    """Management cluster plus three member clusters (NA: phx, slc; EU: ams), four nodes
    each, CRDs installed and the members registered as Clusters; no operator yet."""
    names = [MANAGEMENT, *(m.name for m in MEMBERS)]
    topology = {m.name: (m.region, m.zone) for m in MEMBERS}
    async with (
        SimulatedClusters(names, kubeconfig_path=tmp_path / "kubeconfig") as sim,
        ControlledClusters(
            sim, nodes=6, config=ControlPlaneConfig.fast(), topology=topology, admin=False
        ) as control,
    ):
        client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get(MANAGEMENT))
        world = World(sim, control, client, MEMBERS)
        try:
            await install_crds(client)
            await prepare_members(sim.kubeconfig_path, MEMBERS)
            await register_members(client, sim.kubeconfig_path.read_text(), MEMBERS)
            yield world
        finally:
            await world.close()
            await client.close()


@pytest.fixture
async def world(clusters: World) -> World:
    """:func:`clusters` with the operator leading in this process."""
    await clusters.start_operator()
    return clusters


def example(name: str) -> str:
    return (EXAMPLES / name).read_text()


@dataclass
class DownTracker:
    """Which members matching ``selector`` are short of Ready at every instant, fed by the
    simulator's readiness transitions (pods of one component across all clusters).

    After :meth:`start`, ``max_down`` is the most members down at once, ``max_zones`` the
    most zones with a member down at once, and ``deletions`` counts each pod's deletions
    (a restart deletes the pod; a member restarted twice shows 2)."""

    selector: Mapping[str, str]
    ready: set[str] = field(default_factory=set)
    zone_of: dict[str, str] = field(default_factory=dict)
    expected: set[str] = field(default_factory=set)
    alive: set[str] = field(default_factory=set)
    max_down: int = 0
    max_zones: int = 0
    deletions: dict[str, int] = field(default_factory=dict)

    def __call__(self, t: monitor.Transition) -> None:
        if any(t.labels.get(k) != v for k, v in self.selector.items()):
            return
        key = f"{t.cluster}/{t.name}"
        self.zone_of[key] = t.labels.get(ZONE_LABEL, t.cluster)
        (self.ready.add if t.ready else self.ready.discard)(key)
        if not t.alive and key in self.alive:
            self.deletions[key] = self.deletions.get(key, 0) + 1
        (self.alive.add if t.alive else self.alive.discard)(key)
        down = self.expected - self.ready
        self.max_down = max(self.max_down, len(down))
        self.max_zones = max(self.max_zones, len({self.zone_of[k] for k in down}))

    def start(self) -> None:
        """Watch from now on: every member Ready now is expected to stay or come back."""
        self.expected = set(self.ready)
        self.max_down = self.max_zones = 0
        self.deletions.clear()


def track(world: World, labels: Mapping[str, str]) -> DownTracker:
    """A :class:`DownTracker` subscribed to every member cluster."""
    tracker = DownTracker(dict(labels))
    for member in world.members:
        world._unsubscribes.append(monitor.subscribe(world.sim[member.name], tracker))
    return tracker

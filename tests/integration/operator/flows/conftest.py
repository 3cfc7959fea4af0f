"""The lifecycle flows end to end without the operator process: a small reconcile driver
observes simulated member clusters through lightkube, plans with the real planner, runs
the planned flows on the real ``Engine`` (``MemoryStore``), and repeats until nothing is
left to do. Readiness monitors on every member cluster record every transition."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment, ReplicaSet, StatefulSet
from lightkube.resources.core_v1 import (
    ConfigMap,
    Node,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    Service,
)
from lightkube.resources.core_v1 import Namespace as NamespaceResource
from lightkube.resources.policy_v1 import PodDisruptionBudget
from tests.polling import eventually

import milkyway.operator.tasks  # noqa: F401  (registers the lifecycle tasks)
from milkyway.components import builtin_component_types
from milkyway.flows.engine import Engine
from milkyway.flows.store import MemoryStore
from milkyway.kube.clients import client_from_kubeconfig
from milkyway.kube.labels import selector_labels
from milkyway.model.application import Application, LostMember
from milkyway.model.component_type import ComponentType
from milkyway.model.load import application_from_data
from milkyway.model.resolve import ResolvedApplication, resolve
from milkyway.operator.flows_catalog import build_catalog
from milkyway.operator.observe import ZoneObservation, observe_zone
from milkyway.operator.planner import FlowRequest, Plan, RunningFlow, plan
from milkyway.operator.render_snapshot import externalize, store
from milkyway.render.zone import render_zone
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.monitor import Tally, subscribe

ZONES = ("phx", "slc")
MANAGEMENT = "mgmt"
NAMESPACE = "stream"
_NAMESPACED = (
    StatefulSet,
    Deployment,
    ReplicaSet,
    Pod,
    PersistentVolumeClaim,
    ConfigMap,
    Service,
    PodDisruptionBudget,
)


def application(components: list[dict[str, Any]], name: str = "app1", **annotations: str) -> dict:
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": NAMESPACE, "annotations": dict(annotations)},
        # Lost members are replaced at once here; the grace period has tests of its own.
        "spec": {"components": components, "replacement": {"gracePeriodSeconds": 0}},
    }


def component(name: str, version: str, sizes: Mapping[str, int], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "regions": [{"name": "NA", "zones": [{"name": z, "size": n} for z, n in sizes.items()]}],
        **extra,
    }


@dataclass
class Harness:
    """One Application, reconciled by calling the planner and running its flows."""

    sim: SimulatedClusters
    control: ControlledClusters
    clients: dict[str, AsyncClient]
    types: dict[str, ComponentType]
    engine: Engine
    management: AsyncClient
    """The management cluster: where the operator keeps render snapshots."""
    document: dict[str, Any] = field(default_factory=dict)
    members: dict[str, Any] = field(default_factory=dict)
    runs: list[tuple[FlowRequest, str]] = field(default_factory=list)
    history: list[RunningFlow] = field(default_factory=list)
    lost: list[dict[str, Any]] = field(default_factory=list)
    """The lost members of the last plan's status, as the operator would have written."""

    def app(self) -> Application:
        app = application_from_data(self.document)
        app.status.members = dict(self.members)
        app.status.lost_members = [LostMember.model_validate(e) for e in self.lost]
        return app

    def resolve(self) -> ResolvedApplication:
        resolved = resolve(self.app(), self.types)
        self.members = dict(resolved.members)
        return resolved

    def tally(self, component: str) -> Tally:
        """A readiness monitor of ``component``'s pods across every member cluster."""
        tally = Tally({"milkyway.ebay.com/component": component}, namespace=NAMESPACE)
        for name in self.clients:
            subscribe(self.sim[name], tally)
        return tally

    async def observe(
        self, resolved: ResolvedApplication
    ) -> dict[tuple[str, str], ZoneObservation]:
        observed = {}
        for name, comp in resolved.components.items():
            for zone in comp.zones:
                cluster = zone.cluster or zone.name
                client = self.clients[cluster]
                selector = selector_labels(resolved.name, name, zone.name)
                objects: list[dict[str, Any]] = []
                for resource in _NAMESPACED:
                    async for obj in client.list(resource, namespace=NAMESPACE, labels=selector):
                        objects.append(obj.to_dict())
                claims = {
                    o["spec"].get("volumeName")
                    for o in objects
                    if o["kind"] == "PersistentVolumeClaim"
                }
                async for pv in client.list(PersistentVolume):
                    data = pv.to_dict()
                    labels = data["metadata"].get("labels") or {}
                    if data["metadata"]["name"] in claims or all(
                        labels.get(k) == v for k, v in selector.items()
                    ):
                        objects.append(data)
                async for node in client.list(Node):
                    objects.append(node.to_dict())
                observed[(name, zone.name)] = observe_zone(name, zone.name, cluster, objects)
        for cluster, client in self.clients.items():
            stray: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for resource in _NAMESPACED:
                async for obj in client.list(
                    resource,
                    namespace=NAMESPACE,
                    labels={"milkyway.ebay.com/application": resolved.name},
                ):
                    labels = obj.metadata.labels or {}
                    pair = (labels["milkyway.ebay.com/component"], labels["milkyway.ebay.com/zone"])
                    if pair not in observed:
                        stray.setdefault(pair, []).append(obj.to_dict())
            for pair, objects in stray.items():
                observed[pair] = observe_zone(*pair, cluster, objects)
        return observed

    async def plan(self, now: datetime | None = None, deleting: bool = False) -> Plan:
        resolved = self.resolve()
        desired = {
            (name, zone.name): render_zone(resolved, name, zone.name)
            for name, comp in resolved.components.items()
            for zone in comp.zones
        }
        observed = await self.observe(resolved)
        running = []
        for request, run_name in self.runs:
            run = await self.engine.store.get(run_name)
            running.append(RunningFlow(run_name, request.flow, request.component, run.status.phase))
        result = plan(
            self.app(),
            resolved,
            desired,
            observed,
            running,
            now=now or datetime.now(UTC),
            clusters={},
            deleting=deleting,
        )
        self.lost = list(result.status.get("lostMembers") or [])
        return result

    async def converge(
        self, *, deleting: bool = False, rounds: int = 20, within: float = 90.0
    ) -> list[FlowRequest]:
        """Plan, start, wait, repeat until the plan starts nothing and nothing is pending.

        Returns every flow started, in order."""
        started: list[FlowRequest] = []
        for _ in range(rounds):
            result = await self.plan(deleting=deleting)
            if not result.start:
                if result.requeue_after is not None:
                    await asyncio.sleep(min(result.requeue_after, 1.0))
                    continue
                return started
            names = []
            for request in result.start:
                run = await self.engine.submit(
                    request.flow,
                    await self.small_params(request),
                    target=f"{NAMESPACE}/{self.document['metadata']['name']}/{request.component}",
                    requested_by="milkyway-operator",
                )
                self.runs.append((request, run))
                names.append(run)
                started.append(request)
            for run in names:
                finished = await self.engine.wait(run, within=within)
                assert finished.status.phase == "Succeeded", (
                    f"{finished.spec.flow} {finished.status.phase}: {finished.status.message}"
                    + "".join(
                        f"\n  {path}: {node.phase} {node.message}"
                        for path, node in finished.status.nodes.items()
                        if node.phase == "Failed"
                    )
                )
        raise AssertionError(f"no convergence in {rounds} rounds: {[s.flow for s in started]}")

    async def small_params(self, request: FlowRequest) -> dict[str, Any]:
        """The request's params as the operator submits them: manifests in a render
        snapshot of the management cluster, referred to."""
        name = self.document["metadata"]["name"]
        params, snapshot = externalize(request.params, name, NAMESPACE)
        if snapshot is not None:
            await store(self.management, snapshot, name, [])
        return params

    async def until(self, check: Callable[[], bool], within: float = 30.0) -> None:
        """Poll ``check`` until it holds."""
        await eventually(check, within=within, interval=0.01)

    async def eventually_down(self, pod: str, within: float = 30.0) -> None:
        """Wait until ``pod`` (in any member cluster) exists and is not Ready."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            for found in (await self.pods("")).values():
                if found["metadata"]["name"] == pod and not _pod_ready(found):
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{pod} did not go down within {within}s")

    async def pods(self, component: str) -> dict[str, dict[str, Any]]:
        found = {}
        for client in self.clients.values():
            labels = {"milkyway.ebay.com/component": component} if component else {}
            async for pod in client.list(Pod, namespace=NAMESPACE, labels=labels):
                data = pod.to_dict()
                found[data["metadata"]["name"]] = data
        return found

    async def leftovers(self) -> list[str]:
        """Every object of the Application left in any member cluster."""
        left = []
        selector = {"milkyway.ebay.com/application": self.document["metadata"]["name"]}
        for cluster, client in self.clients.items():
            for resource in _NAMESPACED:
                async for obj in client.list(resource, namespace=NAMESPACE, labels=selector):
                    left.append(f"{cluster}:{resource.__name__}/{obj.metadata.name}")
            async for pv in client.list(PersistentVolume):
                left.append(f"{cluster}:PersistentVolume/{pv.metadata.name}")
        return left


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


@pytest.fixture
def types() -> dict[str, ComponentType]:
    return dict(builtin_component_types())


@pytest.fixture
def control_plane() -> ControlPlaneConfig:
    """The simulated control plane; a test that needs members to take time to restart
    (to see restarts overlap) parametrizes it with stage delays. Nodes are marked NotReady
    only after 5 s without a heartbeat: with ``fast()``'s 1 s, a loaded machine that stalls
    the event loop for a second marks every node NotReady, and the readiness tallies of
    these tests would count members down that no flow took down."""
    return ControlPlaneConfig.fast(node_grace_period=5.0)


@pytest.fixture
def zones() -> tuple[str, ...]:
    """The member clusters, one zone each; a test that needs more parametrizes it."""
    return ZONES


@pytest.fixture
async def harness(
    tmp_path: Path,
    types: dict[str, ComponentType],
    control_plane: ControlPlaneConfig,
    zones: tuple[str, ...],
) -> AsyncIterator[Harness]:
    clusters = [*zones, MANAGEMENT]
    async with SimulatedClusters(clusters, kubeconfig_path=tmp_path / "kubeconfig") as sim:
        control = ControlledClusters(
            sim,
            nodes=4,
            config=control_plane,
            topology={z: ("NA", z) for z in zones},
            admin=False,
        )
        await control.start()
        clients = {z: client_from_kubeconfig(sim.kubeconfig_path, z) for z in zones}
        management = client_from_kubeconfig(sim.kubeconfig_path, MANAGEMENT)
        await management.create(NamespaceResource(metadata=ObjectMeta(name=NAMESPACE)))
        engine = Engine(
            MemoryStore(),
            build_catalog(types.values()),
            clients=clients,
            poll_interval=0.05,
            lease_seconds=10,
            management=management,
        )
        engine.start()
        try:
            yield Harness(sim, control, clients, types, engine, management)
        finally:
            await engine.stop()
            for client in [*clients.values(), management]:
                await client.close()
            await control.stop()

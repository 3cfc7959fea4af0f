"""The operator in-process against simulated clusters: a management cluster, member
clusters with a control plane (nodes, scheduler, kubelets, controllers), a ``Cluster``
resource and kubeconfig Secret per member, as an administrator would register them."""

from __future__ import annotations

import base64
import functools
import importlib.util
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError, AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace, Secret
from lightkube.resources.storage_v1 import StorageClass
from tests.polling import eventually

from milkyway.kube.clients import client_from_kubeconfig
from milkyway.kube.resources import APPLICATION, CLUSTER, FLOWRUN
from milkyway.operator.crd_install import install_crds
from milkyway.operator.manager import Operator, OperatorSettings
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
SYSTEM = "milkyway-system"

FAST = OperatorSettings(
    namespace=SYSTEM,
    workers=4,
    lease_duration=2.0,
    renew_deadline=1.5,
    retry_period=0.2,
    flow_lease_seconds=2.0,
    engine_poll_interval=0.2,
    heartbeat_interval=0.3,
    heartbeat_timeout=1.0,
    resync_period=5.0,
)


def settings(identity: str, **changes: Any) -> OperatorSettings:
    values = {f: getattr(FAST, f) for f in FAST.__dataclass_fields__}
    return OperatorSettings(**{**values, "identity": identity, **changes})


@dataclass
class World:
    """Running simulated clusters, registered as Clusters on the management cluster."""

    sim: SimulatedClusters
    control: ControlledClusters
    mgmt: AsyncClient
    members: dict[str, AsyncClient]
    topology: dict[str, tuple[str, str]]

    def operator(self, identity: str = "op-a", **kw: Any) -> Operator:
        planner = kw.pop("planner", None)
        return Operator(
            self.sim.kubeconfig_path,
            "mgmt",
            settings(identity, **kw),
            planner=planner,
        )

    async def apply_application(self, path_or_doc: Path | Mapping[str, Any]) -> dict[str, Any]:
        doc = load_yaml(path_or_doc) if isinstance(path_or_doc, Path) else dict(path_or_doc)
        namespace = doc["metadata"]["namespace"]
        await ensure_namespace(self.mgmt, namespace)
        created = await self.mgmt.create(APPLICATION.from_dict(doc), namespace=namespace)
        return created.to_dict()

    async def application(self, namespace: str, name: str) -> dict[str, Any]:
        return (await self.mgmt.get(APPLICATION, name, namespace=namespace)).to_dict()

    async def story(self, namespace: str, name: str) -> str:
        """The Application's status and FlowRuns, to explain a failed assertion."""
        lines = [f"status: {(await self.application(namespace, name)).get('status')}"]
        async for run in self.mgmt.list(FLOWRUN, namespace=namespace):
            data = run.to_dict()
            status = data.get("status") or {}
            lines.append(
                f"run {data['metadata']['name']} {status.get('phase')} {status.get('message')}"
            )
            for path, node in (status.get("nodes") or {}).items():
                if node.get("message"):
                    lines.append(f"    {path}: {node.get('phase')} {node.get('message')}")
        return "\n".join(lines)

    eventually = staticmethod(functools.partial(eventually, interval=0.2))


def load_yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


async def ensure_namespace(client: AsyncClient, name: str) -> None:
    try:
        await client.create(Namespace(metadata=ObjectMeta(name=name)))
    except ApiError as exc:
        if exc.status.code != 409:
            raise


@pytest.fixture
def double_planner() -> Any:
    """The planner double of ``planner_double.py`` (a module next to this file)."""
    spec = importlib.util.spec_from_file_location(
        "operator_planner_double", Path(__file__).parent / "planner_double.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.plan


@pytest.fixture
def topology() -> dict[str, tuple[str, str]]:
    """Member cluster name to (region, zone): the Clusters of examples/clusters.yaml."""
    return {
        "na-phx-1": ("NA", "phx"),
        "na-slc-1": ("NA", "slc"),
        "eu-ams-1": ("EU", "ams"),
    }


@pytest.fixture
async def world(tmp_path: Path, topology: dict[str, tuple[str, str]]) -> AsyncIterator[World]:
    async with SimulatedClusters(
        ["mgmt", *topology], kubeconfig_path=tmp_path / "kubeconfig", bookmark_interval=0.5
    ) as sim:
        control = ControlledClusters(
            sim,
            nodes={"mgmt": []} | {name: _nodes(name, *topology[name]) for name in topology},
            config=ControlPlaneConfig.fast(),
            topology=topology,
            admin=False,
        )
        await control.start()
        mgmt = client_from_kubeconfig(sim.kubeconfig_path, "mgmt")
        await install_crds(mgmt)
        await ensure_namespace(mgmt, SYSTEM)
        kubeconfig = sim.kubeconfig_path.read_text()
        for name, (region, zone) in topology.items():
            await register_cluster(mgmt, name, region, zone, kubeconfig)
        members = {name: client_from_kubeconfig(sim.kubeconfig_path, name) for name in topology}
        for client in members.values():
            # The class examples/multi-region.yaml asks for, as a cluster admin provides it.
            await client.create(
                StorageClass(
                    metadata=ObjectMeta(name="fast-ssd"),
                    provisioner="sim.milkyway.io/network",
                    reclaimPolicy="Delete",
                    volumeBindingMode="Immediate",
                )
            )
        try:
            yield World(sim, control, mgmt, members, topology)
        finally:
            for client in [mgmt, *members.values()]:
                await client.close()
            await control.stop()


def _nodes(cluster: str, region: str, zone: str) -> list[Any]:
    from milkyway.sim.nodes import default_nodes

    return default_nodes(6, cluster=cluster, region=region, zone=zone)


async def register_cluster(
    mgmt: AsyncClient, name: str, region: str, zone: str, kubeconfig: str
) -> None:
    """What an administrator does: a kubeconfig Secret and a Cluster naming it."""
    secret = f"{name}-kubeconfig"
    await mgmt.create(
        Secret(
            metadata=ObjectMeta(name=secret, namespace=SYSTEM),
            data={"kubeconfig": base64.b64encode(kubeconfig.encode()).decode()},
        )
    )
    await mgmt.create(
        CLUSTER.from_dict(
            {
                "apiVersion": "milkyway.ebay.com/v1",
                "kind": "Cluster",
                "metadata": {"name": name},
                "spec": {
                    "region": region,
                    "zone": zone,
                    "kubeconfigSecretRef": {"name": secret, "namespace": SYSTEM},
                },
            }
        )
    )


@pytest.fixture
async def mailbox(tmp_path: Path) -> AsyncIterator[Any]:
    """A real SMTP server (aiosmtpd) keeping mail as .eml files under tmp_path."""
    from milkyway.notify.receivers import MailboxServer

    server = MailboxServer(tmp_path / "mailbox")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def slack() -> AsyncIterator[Any]:
    """A real HTTP server standing in for a Slack incoming webhook."""
    from milkyway.notify.receivers import WebhookReceiver

    receiver = WebhookReceiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


def operator_deployment(namespace: str, replicas: int) -> Deployment:
    """The operator's own Deployment, as ``--shards auto`` reads it (its pods are never
    scheduled: only ``spec.replicas`` matters)."""
    labels = {"app.kubernetes.io/name": "milkyway-operator"}
    return Deployment.from_dict(
        {
            "metadata": {"name": "milkyway-operator", "namespace": namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "operator", "image": "milkyway:test"}]},
                },
            },
        }
    )

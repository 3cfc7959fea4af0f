"""Give running simulated clusters a control plane, fault injection and the admin endpoint.

async with SimulatedClusters(["a", "b"]) as sim, ControlledClusters(sim, nodes=3) as ctl:
    ctl.planes["a"]        # the ControlPlane of cluster a
    await ctl.faults.lose_node("a", "a-node-0")
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from milkyway.sim.controllers.admin import AdminServer, admin_file
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.controllers.kubelet import Kubelet
from milkyway.sim.controllers.manager import start_control_plane
from milkyway.sim.controllers.runtime import ControlPlane
from milkyway.sim.faults import ApiFaultState, ClusterTarget, Faults
from milkyway.sim.nodes import NodeSpec, default_nodes
from milkyway.sim.private_file import write_private


class ControlledClusters:
    """Start a control plane per cluster of ``sim`` (a started ``SimulatedClusters``).

    ``nodes``: a count per cluster, or explicit :class:`NodeSpec` lists by cluster name.
    ``topology``: ``{cluster: (region, zone)}`` for the default nodes' labels (default:
    region ``sim``, zone = the cluster's name). ``admin``: serve the fault admin endpoint
    and write ``<kubeconfig>.admin.json`` so ``milkyway sim fault`` can find it.
    """

    def __init__(
        self,
        sim: Any,
        *,
        nodes: int | Mapping[str, list[NodeSpec]] = 3,
        config: ControlPlaneConfig | None = None,
        topology: Mapping[str, tuple[str, str]] | None = None,
        admin: bool = True,
    ) -> None:
        self.sim = sim
        self.nodes = nodes
        self.config = config or ControlPlaneConfig()
        self.topology = dict(topology or {})
        self.admin = admin
        self.planes: dict[str, ControlPlane] = {}
        self.faults = Faults()
        self.admin_server: AdminServer | None = None
        self.admin_path: Path | None = None

    def _nodes_for(self, name: str) -> list[NodeSpec]:
        if isinstance(self.nodes, int):
            region, zone = self.topology.get(name, ("sim", name))
            return default_nodes(self.nodes, cluster=name, region=region, zone=zone)
        return list(self.nodes.get(name, []))

    async def start(self) -> ControlledClusters:
        for index, cluster in enumerate(self.sim):
            plane = start_control_plane(
                cluster.api, self._nodes_for(cluster.name), self.config, cluster_index=index
            )
            self.planes[cluster.name] = plane
            kubelet = plane.controllers["kubelet"]
            assert isinstance(kubelet, Kubelet)
            self.faults.register(
                ClusterTarget(
                    cluster.name,
                    plane,
                    kubelet,
                    getattr(cluster, "server", None),
                    ApiFaultState(self.config.seed),
                )
            )
        if self.admin:
            self.admin_server = AdminServer(self.faults, self.sim.admin_token)
            url = await self.admin_server.start()
            self.admin_path = write_private(
                admin_file(Path(self.sim.kubeconfig_path)),
                json.dumps({"url": url, "token": self.sim.admin_token}),
            )
        return self

    async def stop(self) -> None:
        await self.faults.lift_all()
        for plane in self.planes.values():
            await plane.stop()
        self.planes.clear()
        if self.admin_server is not None:
            await self.admin_server.stop()
            self.admin_server = None
        if self.admin_path is not None:
            self.admin_path.unlink(missing_ok=True)
            self.admin_path = None

    async def settle(self, limit: float = 10.0) -> None:
        for plane in self.planes.values():
            await plane.settle(limit)

    async def __aenter__(self) -> ControlledClusters:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

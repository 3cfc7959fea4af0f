"""Give running simulated clusters a control plane, fault injection and the admin endpoint.

async with SimulatedClusters(["a", "b"]) as sim, ControlledClusters(sim, nodes=3) as ctl:
    ctl.planes["a"]        # the ControlPlane of cluster a
    await ctl.faults.lose_node("a", "a-node-0")
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from milkyway.sim.controllers.admin import AdminServer, admin_file
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.controllers.kubelet import Kubelet
from milkyway.sim.controllers.manager import start_control_plane
from milkyway.sim.controllers.runtime import ControlPlane
from milkyway.sim.faults import ApiFaultState, ClusterTarget, Faults
from milkyway.sim.nodes import NodeSpec, default_nodes
from milkyway.sim.private_file import write_private
from milkyway.sim.process.images import ImageMap, ImageRule
from milkyway.sim.process.network import PodNetwork
from milkyway.sim.process.runtime import ClusterFacts, ProcessRuntime


class ControlledClusters:
    """Start a control plane per cluster of ``sim`` (a started ``SimulatedClusters``).

    ``nodes``: a count per cluster, or explicit :class:`NodeSpec` lists by cluster name.
    ``topology``: ``{cluster: (region, zone)}`` for the default nodes' labels (default:
    region ``sim``, zone = the cluster's name). ``admin``: serve the fault admin endpoint
    and write ``<kubeconfig>.admin.json`` so ``milkyway sim fault`` can find it.
    ``images``: run pods whose images are all mapped as real local processes (an
    :class:`ImageMap`, or rules placed before the built-in ones); None keeps every pod
    simulated. ``state_dir``: where pod folders and volume directories live (default: a
    temporary directory removed on stop). ``volume_sync_seconds``: how often ConfigMap
    and Secret changes reach mounted files. ``sized_volumes``: each PersistentVolume of a
    process-backed pod is a filesystem of its capacity (root only), which ``fill-disk``
    can fill.
    """

    def __init__(
        self,
        sim: Any,
        *,
        nodes: int | Mapping[str, list[NodeSpec]] = 3,
        config: ControlPlaneConfig | None = None,
        topology: Mapping[str, tuple[str, str]] | None = None,
        admin: bool = True,
        images: ImageMap | Iterable[ImageRule] | None = None,
        state_dir: str | Path | None = None,
        volume_sync_seconds: float = 5.0,
        sized_volumes: bool = False,
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
        self.images = images if isinstance(images, ImageMap) or images is None else ImageMap(images)
        self._state_arg = Path(state_dir) if state_dir is not None else None
        self._state_tmp: Path | None = None
        self.volume_sync_seconds = volume_sync_seconds
        self.sized_volumes = sized_volumes
        self.network = PodNetwork()
        self.runtimes: dict[str, ProcessRuntime] = {}
        self._tokens: dict[tuple[str, str], str] = {}

    def _nodes_for(self, name: str) -> list[NodeSpec]:
        if isinstance(self.nodes, int):
            region, zone = self.topology.get(name, ("sim", name))
            return default_nodes(self.nodes, cluster=name, region=region, zone=zone)
        return list(self.nodes.get(name, []))

    async def start(self) -> ControlledClusters:
        for index, cluster in enumerate(self.sim):
            runtime = self._runtime_for(cluster)
            plane = start_control_plane(
                cluster.api,
                self._nodes_for(cluster.name),
                self.config,
                cluster_index=index,
                process=runtime,
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

    def _state_dir(self) -> Path:
        if self._state_arg is not None:
            return self._state_arg
        if self._state_tmp is None:
            self._state_tmp = Path(tempfile.mkdtemp(prefix="milkyway-pods-"))
        return self._state_tmp

    def _service_account_token(self, namespace: str, account: str) -> str:
        """A bearer token the API servers accept as the service account."""
        key = (namespace, account)
        if key not in self._tokens:
            add_user = getattr(self.sim, "add_user", None)
            if add_user is None:
                return ""
            self._tokens[key] = add_user(
                f"system:serviceaccount:{namespace}:{account}",
                ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
            )
        return self._tokens[key]

    def _runtime_for(self, cluster: Any) -> ProcessRuntime | None:
        if self.images is None:
            return None
        url = urlsplit(getattr(cluster, "url", "") or "")
        certificate = getattr(self.sim, "certificate", None)
        runtime = ProcessRuntime(
            ClusterFacts(
                cluster.name,
                api_host=url.hostname or "127.0.0.1",
                api_port=url.port or 0,
                ca_pem=certificate.ca_pem.decode() if certificate is not None else "",
            ),
            self.images,
            self.network,
            self._state_dir() / cluster.name,
            token=self._service_account_token,
            crash_backoff=self.config.crash_backoff,
            volume_sync_seconds=self.volume_sync_seconds,
            sized_volumes=self.sized_volumes,
        )
        self.runtimes[cluster.name] = runtime
        if hasattr(cluster, "runtime"):
            cluster.runtime = runtime
        api = getattr(cluster, "api", None)
        if api is not None:
            api.container_runtime = runtime  # logs, exec and port-forward reach its processes
        return runtime

    def leftover_processes(self) -> list[int]:
        """Process groups started by any runtime here that still have a live process."""
        return sorted(g for r in self.runtimes.values() for g in r.leftover_groups())

    async def stop(self) -> None:
        await self.faults.lift_all()
        for plane in self.planes.values():
            await plane.stop()
        self.planes.clear()
        for cluster in self.sim:
            if getattr(cluster, "runtime", None) is not None:
                cluster.runtime = None
        if self._state_tmp is not None:
            shutil.rmtree(self._state_tmp, ignore_errors=True)
            self._state_tmp = None
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

"""Assemble a cluster's control plane: every built-in controller on one :class:`ControlPlane`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.controllers.kubelet import Kubelet
from milkyway.sim.controllers.lifecycle import NodeLifecycleController
from milkyway.sim.controllers.runtime import ControlPlane
from milkyway.sim.controllers.scheduling import SchedulerController
from milkyway.sim.controllers.services import DisruptionController, EndpointsController
from milkyway.sim.controllers.storage import VolumeController
from milkyway.sim.controllers.volumes import default_storage_classes
from milkyway.sim.controllers.workloads import (
    DeploymentController,
    ReplicaSetController,
    StatefulSetController,
)
from milkyway.sim.nodes import NodeSpec, default_nodes
from milkyway.sim.process.runtime import ProcessRuntime

if TYPE_CHECKING:
    from milkyway.sim.apiserver.api import ClusterAPI


def start_control_plane(
    api: ClusterAPI,
    nodes: list[NodeSpec] | int = 3,
    config: ControlPlaneConfig | None = None,
    *,
    cluster_index: int = 0,
    process: ProcessRuntime | None = None,
) -> ControlPlane:
    """Start scheduler, kubelets, node lifecycle and workload/storage/service controllers.

    Call from a running event loop; stop with ``await plane.stop()``. ``nodes`` is a list
    of :class:`NodeSpec` or a count of default nodes named after the cluster.
    ``process``: run pods whose images it maps as real processes (None: all simulated).
    """
    specs = default_nodes(nodes, cluster=api.name) if isinstance(nodes, int) else list(nodes)
    for storage_class in default_storage_classes():
        try:
            api.create(storage_class)
        except ApiError as err:
            if err.reason != "AlreadyExists":
                raise
    plane = ControlPlane(api, config)
    kubelet = Kubelet(specs, cluster_index=cluster_index, process=process)
    for controller in (
        kubelet,
        SchedulerController(),
        VolumeController(),
        StatefulSetController(),
        ReplicaSetController(),
        DeploymentController(),
        EndpointsController(),
        DisruptionController(),
        NodeLifecycleController(),
    ):
        plane.add(controller)
    plane.start()
    return plane

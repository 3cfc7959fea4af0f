"""What the API server needs of a runtime that runs a pod's containers as real processes.

A cluster whose kubelet runs some pods as local processes sets
``ClusterAPI.container_runtime`` to an object with :meth:`ContainerRuntime.container`;
``pods/log``, ``pods/exec`` and ``pods/attach`` then reach the real process. For every
other pod (and when no runtime is set) the API server answers from the simulated
kubelet's records, as a node would for a container that cannot run commands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Protocol


class ContainerHandle(Protocol):
    """One running container: its pod's address, its process and how to enter it."""

    @property
    def pod_ip(self) -> str: ...

    @property
    def pid(self) -> int | None:
        """The main process while the container runs, else None."""
        ...

    @property
    def env(self) -> Mapping[str, str]: ...

    @property
    def working_dir(self) -> str | None: ...

    @property
    def enter_argv(self) -> Sequence[str]:
        """An argv prefix that runs a command inside the pod's mount namespace and
        working directory (empty while the container does not run)."""
        ...

    @property
    def log_path(self) -> str | PathLike[str]: ...

    @property
    def previous_log_path(self) -> str | PathLike[str] | None: ...


class ContainerRuntime(Protocol):
    def container(
        self, namespace: str, pod: str, container: str | None = None
    ) -> ContainerHandle | None:
        """The running container, or None when the pod is not process-backed or the
        container is not running now."""
        ...

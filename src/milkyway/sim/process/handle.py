"""What the rest of the simulator (logs, exec, port-forward, proxy) needs of a container."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ContainerHandle:
    """A snapshot of one container of a process-backed pod.

    ``pod_ip``: the pod's own loopback address; its containers listen there on their
    real ports (a wildcard listen is narrowed to it), so port-forward and proxy connect
    to ``pod_ip:port``. ``pid``: the container's main process while it runs (from the
    moment its volumes and hosts file are in place), else None; it leads its own
    process group. ``env``: the container's environment as the process got it.
    ``working_dir``: the container's ``workingDir`` (None: the image default, ``/``).
    ``enter_argv``: an argv prefix that runs a command inside the container's filesystem
    view (its mount namespace and root: volumes at their mount paths, its ``/etc/hosts``)
    and working directory, e.g. ``enter_argv + ["sh", "-c", "echo mntr | nc ..."]``;
    it runs as root with the caller's environment, so pass ``env`` along for exec.
    Empty while the container does not run. ``log_path``: the current instance's output
    (stdout and stderr, plain text, one line per output line, appended while it runs).
    ``previous_log_path``: the previous instance's output after a restart, else None.
    """

    namespace: str
    pod: str
    container: str
    pod_ip: str
    pid: int | None
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    enter_argv: list[str] = field(default_factory=list)
    log_path: Path = Path()
    previous_log_path: Path | None = None
    restart_count: int = 0

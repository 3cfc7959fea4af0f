"""One container of a process-backed pod: its process, its restarts and its status.

:class:`ContainerProcess` starts the container in its sandbox as the leader of a new
process group, notices its exit through a pidfd (no polling), keeps one log file per
instance, and ends it the Kubernetes way: SIGTERM to the whole group, SIGKILL when the
grace period is over. Restarts back off exponentially as a kubelet's do (base, doubling,
capped at 30 times the base, reset after a long enough run).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milkyway.sim.controllers.objects import now_rfc3339
from milkyway.sim.controllers.podstatus import ContainerRuntime

BACKOFF_CAP_FACTOR = 30
"""A kubelet's crash back-off goes 10 s, 20 s, ... up to 300 s: 30 times the base."""
RESET_AFTER_FACTOR = 60
"""A container that ran 60 times the base (10 minutes for 10 s) starts its back-off anew."""


@dataclass
class Instance:
    """One run of the container's process."""

    process: subprocess.Popen[bytes]
    started: float
    started_at: str
    log_path: Path
    stopping: bool = False
    kill_timer: asyncio.TimerHandle | None = None
    set_up: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the container's filesystem view is complete and its command runs."""
    handled: bool = False
    """Its exit has been recorded in the container's status."""
    reason: str = ""
    """Why the runtime ended it (a liveness failure, the pod's deletion), if it did."""


@dataclass
class ContainerProcess:
    """The runtime's record of one container of one pod."""

    spec: dict[str, Any]
    status: ContainerRuntime
    logs: Path
    init: bool = False
    instance: Instance | None = None
    previous_log: Path | None = None
    failures: int = 0
    next_start: float = 0.0
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    ready: bool = False
    started_probe_ok: bool = False
    probe_task: asyncio.Task[None] | None = None
    done: bool = False
    """An init container that completed, or a container that will not be restarted."""
    _pidfd: int | None = None

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    @property
    def pid(self) -> int | None:
        inst = self.instance
        if inst is None or inst.process.poll() is not None:
            return None
        return inst.process.pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def started(self) -> bool:
        """Running, with its mounts in place (the sandbox's setup has finished)."""
        return self.running and self.instance is not None and self.instance.set_up.is_set()

    @property
    def group_running(self) -> bool:
        """Whether any process of the current instance's group still runs (children
        included), not just the main process."""
        inst = self.instance
        return inst is not None and group_alive(inst.process.pid)

    def start(self, argv: list[str], on_change: Callable[[], None]) -> None:
        """Start a new instance; its output goes to a fresh log file."""
        self.logs.mkdir(parents=True, exist_ok=True)
        count = self.status.restart_count
        log_path = self.logs / f"{count}.log"
        if self.instance is not None:
            self.previous_log = self.instance.log_path
        ready_read, ready_write = os.pipe()
        try:
            with open(log_path, "ab") as out:
                process = subprocess.Popen(
                    argv,
                    stdin=ready_write,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
        except BaseException:
            os.close(ready_read)
            raise
        finally:
            os.close(ready_write)
        inst = Instance(process, time.monotonic(), now_rfc3339(), log_path)
        self.instance = inst
        self._watch(process.pid, on_change)
        loop = asyncio.get_running_loop()

        def setup_done() -> None:
            try:
                data = os.read(ready_read, 16)
            except OSError:
                data = b""
            loop.remove_reader(ready_read)
            os.close(ready_read)
            if data.startswith(b"ok"):
                inst.set_up.set()
                on_change()

        loop.add_reader(ready_read, setup_done)

    def _watch(self, pid: int, on_change: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            loop.call_later(0.5, self._poll, on_change)
            return
        self._close_pidfd()
        self._pidfd = fd

        def exited() -> None:
            self._close_pidfd()
            on_change()

        loop.add_reader(fd, exited)

    def _poll(self, on_change: Callable[[], None]) -> None:
        if self.instance is not None and self.instance.process.poll() is None:
            asyncio.get_running_loop().call_later(0.5, self._poll, on_change)
        else:
            on_change()

    def _close_pidfd(self) -> None:
        fd, self._pidfd = self._pidfd, None
        if fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(fd)
            with contextlib.suppress(OSError):
                os.close(fd)

    def exit_code(self) -> int | None:
        if self.instance is None:
            return None
        return self.instance.process.poll()

    def stop(self, grace: float, reason: str = "") -> None:
        """SIGTERM the process group now, SIGKILL it after ``grace`` seconds."""
        inst = self.instance
        if inst is None or inst.stopping or not group_alive(inst.process.pid):
            return
        inst.stopping = True
        inst.reason = reason
        signal_group(inst.process.pid, signal.SIGTERM)
        if grace <= 0:
            signal_group(inst.process.pid, signal.SIGKILL)
            return
        loop = asyncio.get_running_loop()
        inst.kill_timer = loop.call_later(grace, signal_group, inst.process.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the process group at once and reap the leader."""
        inst = self.instance
        if inst is None:
            return
        if inst.kill_timer is not None:
            inst.kill_timer.cancel()
        signal_group(inst.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            inst.process.wait(timeout=5)
        self._close_pidfd()

    def cancel_probes(self) -> None:
        if self.probe_task is not None:
            self.probe_task.cancel()
            self.probe_task = None

    def backoff(self, base: float) -> float:
        """The wait before the next start after ``failures`` consecutive failures."""
        if self.failures <= 0 or base <= 0:
            return 0.0
        return min(base * 2 ** (self.failures - 1), base * BACKOFF_CAP_FACTOR)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``, read from ``/proc``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (an unreaped zombie does not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(group_members(pgid))

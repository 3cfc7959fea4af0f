"""``kubectl logs`` against simulated pods: follow, previous, tail, since, timestamps."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.clusters import SimulatedClusters

from ..conftest import Kubectl


def _pod(api: ClusterAPI, name: str = "p", containers: tuple[str, ...] = ("main",)) -> None:
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": c, "image": "busybox:1"} for c in containers]},
        }
    )


async def _line(stream: asyncio.StreamReader) -> str:
    return (await asyncio.wait_for(stream.readline(), 30)).decode()


async def test_follow_streams_new_lines_and_ends_when_the_container_stops(
    kubectl: Kubectl, sim: SimulatedClusters
) -> None:
    api = sim["c1"].api
    _pod(api)
    api.write_log("p", "main", "one", namespace="default")
    proc = await kubectl.start("logs", "-f", "p")
    try:
        assert proc.stdout is not None
        assert await _line(proc.stdout) == "one\n"
        api.write_log("p", "main", "two\nthree", namespace="default")
        assert await _line(proc.stdout) == "two\n"
        assert await _line(proc.stdout) == "three\n"
        await asyncio.sleep(0.3)
        assert proc.returncode is None, "kubectl logs -f returned while the container runs"
        api.write_log("p", "main", "last words", namespace="default")
        api.stop_log("p", "main", namespace="default")
        assert await _line(proc.stdout) == "last words\n"
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_follower_that_leaves_is_forgotten(
    kubectl: Kubectl, sim: SimulatedClusters
) -> None:
    api = sim["c1"].api
    _pod(api)
    api.write_log("p", "main", "hello", namespace="default")
    proc = await kubectl.start("logs", "-f", "p")
    assert proc.stdout is not None
    assert await _line(proc.stdout) == "hello\n"
    assert api.logs.followers == 1
    proc.kill()
    await proc.wait()
    deadline = asyncio.get_running_loop().time() + 30
    while api.logs.followers:
        assert asyncio.get_running_loop().time() < deadline, "the follow outlived its client"
        await asyncio.sleep(0.05)


async def test_follow_ends_when_the_pod_is_deleted(
    kubectl: Kubectl, sim: SimulatedClusters
) -> None:
    api = sim["c1"].api
    _pod(api)
    api.write_log("p", "main", "hello", namespace="default")
    proc = await kubectl.start("logs", "-f", "p")
    try:
        assert proc.stdout is not None
        assert await _line(proc.stdout) == "hello\n"
        api.delete("pods", "p", namespace="default")
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_previous_tail_since_timestamps_and_limit(
    kubectl: Kubectl, sim: SimulatedClusters
) -> None:
    api = sim["c1"].api
    _pod(api)
    refused = await kubectl.run("logs", "p", "--previous", check=False)
    assert refused.returncode != 0
    assert 'previous terminated container "main" in pod "p" not found' in refused.stderr

    api.write_log("p", "main", "first run\ncrashed", namespace="default")
    api.stop_log("p", "main", namespace="default")
    api.write_log("p", "main", "a\nb\nc", namespace="default")
    assert (await kubectl.run("logs", "p")).stdout == "a\nb\nc\n"
    assert (await kubectl.run("logs", "p", "--previous")).stdout == "first run\ncrashed\n"
    assert (await kubectl.run("logs", "p", "--tail=2")).stdout == "b\nc\n"
    assert (await kubectl.run("logs", "p", "--tail=0")).stdout == ""
    assert (await kubectl.run("logs", "p", "--limit-bytes=3")).stdout == "a\nb"

    stamped = (await kubectl.run("logs", "p", "--timestamps")).stdout.splitlines()
    assert len(stamped) == 3
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z [abc]$", s) for s in stamped)

    await asyncio.sleep(2.5)
    api.write_log("p", "main", "recent", namespace="default")
    assert (await kubectl.run("logs", "p", "--since=2s")).stdout == "recent\n"
    first = stamped[0].split(" ", 1)[0]
    since_time = await kubectl.run("logs", "p", f"--since-time={first}")
    assert since_time.stdout == "a\nb\nc\nrecent\n"


async def test_the_container_is_chosen_by_name(kubectl: Kubectl, sim: SimulatedClusters) -> None:
    api = sim["c1"].api
    _pod(api, containers=("app", "sidecar"))
    api.write_log("p", "sidecar", "from the sidecar", namespace="default")
    defaulted = await kubectl.run("logs", "p")
    assert defaulted.stdout == "" and 'Defaulted container "app"' in defaulted.stderr
    assert (await kubectl.run("logs", "p", "-c", "sidecar")).stdout == "from the sidecar\n"
    refused = await kubectl.run("logs", "p", "-c", "nope", check=False)
    assert refused.returncode != 0
    assert "container nope is not valid for pod p" in refused.stderr


@dataclass
class FileContainer:
    """A process-backed container as the runtime describes it: a process and log files."""

    pid: int
    log_path: str
    previous_log_path: str | None
    pod_ip: str = "127.0.0.4"
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = "/"
    enter_argv: tuple[str, ...] = ()


@dataclass
class FileRuntime:
    handle: FileContainer | None = None

    def container(
        self, namespace: str, pod: str, container: str | None = None
    ) -> FileContainer | None:
        return self.handle if pod == "proc" else None


async def test_process_backed_logs_come_from_the_log_files(
    kubectl: Kubectl, sim: SimulatedClusters, tmp_path: Path
) -> None:
    api = sim["c1"].api
    _pod(api, "proc")
    current, previous = tmp_path / "current.log", tmp_path / "previous.log"
    previous.write_text("2026-01-01T00:00:00.000000000Z stdout F before the restart\n")
    current.write_text(
        "2026-01-01T00:00:01.000000000Z stdout F cri line\nplain line without a stamp\n"
    )
    process = await asyncio.create_subprocess_exec("sleep", "60")
    runtime = FileRuntime(FileContainer(process.pid, str(current), str(previous)))
    api.container_runtime = runtime
    follower = None
    try:
        assert (
            await kubectl.run("logs", "proc")
        ).stdout == "cri line\nplain line without a stamp\n"
        assert (await kubectl.run("logs", "proc", "--previous")).stdout == "before the restart\n"
        stamped = (await kubectl.run("logs", "proc", "--timestamps", "--tail=2")).stdout
        assert stamped.splitlines()[0] == "2026-01-01T00:00:01.000000000Z cri line"

        follower = await kubectl.start("logs", "-f", "proc", "--tail=1")
        assert follower.stdout is not None
        assert await _line(follower.stdout) == "plain line without a stamp\n"
        with current.open("a") as log:
            log.write("2026-01-01T00:00:02.000000000Z stdout F appended\n")
        assert await _line(follower.stdout) == "appended\n"
        process.kill()
        await process.wait()
        assert await asyncio.wait_for(follower.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if follower is not None and follower.returncode is None:
            follower.kill()
            await follower.wait()

"""Real ZooKeeper ensembles run by the simulator's process runtime across three simulated
clusters, driven by the operator in this process, and the instruments that judge them:
``mntr`` over TCP, a writer that writes a znode every 50 ms, and a sampler of which
members answer. After every test no process the simulator started may be left."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError
from lightkube import AsyncClient, KubeConfig

from milkyway.cli.demo import prepare_members, register_members
from milkyway.operator.crd_install import install_crds
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.process import ImageMap
from milkyway.sim.process.container import group_members
from milkyway.sim.process.images import ZOOKEEPER_HOME

from ..conftest import MANAGEMENT, MEMBERS, World

NS, APP = "real", "zk"


def application(
    sizes: dict[str, int],
    version: str = "3.8.4",
    storage: str | None = None,
    replacement_grace: int | None = None,
) -> str:
    """The ensemble's Application; ``storage``: each member's volume size,
    ``replacement_grace``: seconds before a lost or full member is replaced."""
    regions = {"NA": ("phx", "slc"), "EU": ("ams",)}
    lines = [
        "apiVersion: milkyway.ebay.com/v1",
        "kind: Application",
        f"metadata: {{name: {APP}, namespace: {NS}}}",
        "spec:",
    ]
    if replacement_grace is not None:
        lines.append(f"  replacement: {{gracePeriodSeconds: {replacement_grace}}}")
    lines += [
        "  components:",
        "    - name: zookeeper",
        f'      version: "{version}"',
        "      params: {heapMb: 96, tickTime: 500, initLimit: 20, syncLimit: 10}",
    ]
    if storage is not None:
        lines.append(f"      storage: {{size: {storage}}}")
    lines.append("      regions:")
    for region, zones in regions.items():
        present = [z for z in zones if sizes.get(z)]
        if not present:
            continue
        lines.append(f"        - name: {region}")
        lines.append("          zones:")
        lines += [f"            - {{name: {z}, size: {sizes[z]}}}" for z in present]
    return "\n".join(lines) + "\n"


@dataclass
class Member:
    cluster: str
    pod: str
    ip: str


def members(world: World) -> list[Member]:
    """Every ZooKeeper pod the process runtimes run now."""
    found = []
    for member in world.members:
        runtime = world.sim[member.name].runtime
        assert runtime is not None
        for (ns, name), box in sorted(runtime.pods.items()):
            if ns == NS and "-zookeeper-" in name and not box.terminating:
                found.append(Member(member.name, name, box.ip))
    return found


async def four_letter(ip: str, word: str) -> str:
    """Send a ZooKeeper four-letter word; '' when the member does not answer in 2 s."""
    try:
        async with asyncio.timeout(2.0):
            reader, writer = await asyncio.open_connection(ip, 2181)
            writer.write(word.encode())
            await writer.drain()
            data = await reader.read()
            writer.close()
            return data.decode(errors="replace")
    except (OSError, TimeoutError):
        return ""


def mntr_fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition("\t")
        if key:
            out[key.strip()] = value.strip()
    return out


async def states(world: World) -> dict[str, str]:
    """``zk_server_state`` of every member (pod name -> leader/follower/'')."""
    result = {}
    for m in members(world):
        result[m.pod] = mntr_fields(await four_letter(m.ip, "mntr")).get("zk_server_state", "")
    return result


async def wait_quorum(world: World, size: int, within: float = 120) -> dict[str, str]:
    """Until ``size`` members answer: one leader, the rest followers."""
    deadline = time.monotonic() + within
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        seen = await states(world)
        values = sorted(seen.values())
        if len(seen) == size and values == ["follower"] * (size - 1) + ["leader"]:
            return seen
        await asyncio.sleep(0.5)
    raise AssertionError(f"no quorum of {size} within {within}s: {seen}")


@dataclass
class Writer:
    """Writes a sequential znode every 50 ms from its own thread; records which writes
    the ensemble acknowledged and the longest time between two acknowledged writes."""

    hosts: str
    acked: list[str] = field(default_factory=list)
    failures: int = 0
    longest_gap: float = 0.0
    gaps: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        client = KazooClient(hosts=self.hosts, timeout=10.0, connection_retry={"max_tries": -1})
        client.start(timeout=30)
        client.ensure_path("/writes")
        last = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    path = client.create("/writes/w-", b"x", sequence=True)
                    self.acked.append(path)
                    now = time.monotonic()
                    if now - last > 0.5:
                        self.gaps.append((last, now))
                    self.longest_gap = max(self.longest_gap, now - last)
                    last = now
                except (KazooException, KazooTimeoutError):
                    self.failures += 1
                self._stop.wait(0.05)
        finally:
            client.stop()
            client.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)


def read_back(hosts: str) -> set[str]:
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=30)
    try:
        return {f"/writes/{c}" for c in client.get_children("/writes")}
    finally:
        client.stop()
        client.close()


def listening(port: int) -> set[str]:
    """Addresses with a socket listening on ``port``, read from the kernel's tables (no
    connection attempt, so a busy event loop cannot make a member look down)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            rows = f.read().splitlines()[1:]
        for row in rows:
            fields = row.split()
            local, state = fields[1], fields[3]
            if state != "0A":
                continue
            address, _, hex_port = local.partition(":")
            if int(hex_port, 16) != port:
                continue
            raw = bytes.fromhex(address[-8:])
            found.add(".".join(str(b) for b in reversed(raw)))
    return found


@dataclass
class Sampler:
    """Every 100 ms: how many members listen on the client port."""

    world: World
    expected: int
    most_down: int = 0
    worst: str = ""
    samples: int = 0
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        started = time.monotonic()
        while True:
            up = listening(2181)
            found = members(self.world)
            serving = [m for m in found if m.ip in up]
            self.samples += 1
            down = self.expected - len(serving)
            if down > self.most_down:
                self.most_down = down
                self.worst = (
                    f"at {time.monotonic() - started:.1f}s: serving "
                    f"{sorted(m.pod for m in serving)} of {sorted(m.pod for m in found)}"
                )
            await asyncio.sleep(0.1)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def connect_string(world: World) -> str:
    return ",".join(f"{m.ip}:2181" for m in members(world))


@pytest.fixture
async def real_world(tmp_path: Path) -> AsyncIterator[World]:
    """Management + three member clusters whose kubelets run ZooKeeper for real, the
    operator leading; fails if a process outlives the simulator."""
    async with _real_world(tmp_path) as world:
        yield world


@pytest.fixture
async def sized_real_world(tmp_path: Path) -> AsyncIterator[World]:
    """:func:`real_world` whose volumes are filesystems of their capacity (``fill-disk``
    works), with the operator looking at the agents' disk reports every second."""
    async with _real_world(tmp_path, sized_volumes=True, disk_watch_interval=1.0) as world:
        yield world


@contextlib.asynccontextmanager
async def _real_world(
    tmp_path: Path, sized_volumes: bool = False, **operator: Any
) -> AsyncIterator[World]:
    if not (ZOOKEEPER_HOME / "bin" / "zkServer.sh").exists() or shutil.which("java") is None:
        pytest.fail("Debian's zookeeper is needed: apt-get install -y zookeeper")
    names = [MANAGEMENT, *(m.name for m in MEMBERS)]
    topology = {m.name: (m.region, m.zone) for m in MEMBERS}
    started: set[int] = set()
    async with (
        SimulatedClusters(names, kubeconfig_path=tmp_path / "kubeconfig") as sim,
        ControlledClusters(
            sim,
            nodes=4,
            config=ControlPlaneConfig.fast(crash_backoff=1.0),
            topology=topology,
            admin=False,
            images=ImageMap([]),
            state_dir=tmp_path / "state",
            sized_volumes=sized_volumes,
        ) as control,
    ):
        client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get(MANAGEMENT))
        world = World(sim, control, client, MEMBERS)
        try:
            await install_crds(client)
            await prepare_members(sim.kubeconfig_path, MEMBERS)
            await register_members(client, sim.kubeconfig_path.read_text(), MEMBERS)
            await world.start_operator(**operator)
            yield world
        finally:
            for runtime in control.runtimes.values():
                started |= runtime.started_groups
            await world.close()
            await client.close()
    leftovers = {g: group_members(g) for g in started if group_members(g)}
    assert not leftovers, f"processes left running after the simulator stopped: {leftovers}"

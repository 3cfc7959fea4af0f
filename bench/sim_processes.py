"""Real ZooKeeper and etcd in simulated pods: how long they take and what they cost.

Prints, asserting nothing:

* start-to-Ready of a real 3- and 5-member ZooKeeper ensemble over three simulated
  clusters (Application applied -> Ready, and -> quorum answering ``mntr``);
* a rolling restart of the 5-member ensemble by the operator against the policy's lower
  bound (ceil(n / maxDown) batches of the fastest single-member restart measured just
  before), and the longest gap between acknowledged writes of a client writing a znode
  every 50 ms throughout;
* RSS of each ZooKeeper and etcd process, and of the whole ``milkyway demo --fast`` (the
  demo process and every process it started) once everything is Ready.

    .venv/bin/python bench/sim_processes.py [--skip-demo]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError
from lightkube import AsyncClient, KubeConfig

from milkyway.cli.app_commands import APPLICATION, _now, apply_documents, request_restart
from milkyway.cli.demo import MemberCluster, is_ready, prepare_members, register_members
from milkyway.cli.demo_processes import demo_images
from milkyway.operator.crd_install import install_crds
from milkyway.operator.manager import Operator, OperatorSettings
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = (
    MemberCluster("na-phx", "NA", "phx"),
    MemberCluster("na-slc", "NA", "slc"),
    MemberCluster("eu-ams", "EU", "ams"),
)
NS = "bench"


def zookeeper_app(name: str, sizes: dict[str, int]) -> str:
    zones = {"NA": [z for z in ("phx", "slc") if z in sizes], "EU": ["ams"]}
    regions = "".join(
        f"        - name: {region}\n          zones:\n"
        + "".join(f"            - {{name: {z}, size: {sizes[z]}}}\n" for z in names)
        for region, names in zones.items()
    )
    return (
        "apiVersion: milkyway.ebay.com/v1\nkind: Application\n"
        f"metadata: {{name: {name}, namespace: {NS}}}\nspec:\n  components:\n"
        '    - name: zookeeper\n      version: "3.8.4"\n'
        "      params: {heapMb: 96, tickTime: 500, initLimit: 20, syncLimit: 10}\n"
        f"      regions:\n{regions}"
    )


class Bench:
    def __init__(self, sim: SimulatedClusters, control: ControlledClusters) -> None:
        self.sim = sim
        self.control = control
        self.client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get("mgmt"))

    async def app(self, name: str) -> dict[str, Any]:
        return dict((await self.client.get(APPLICATION, name, namespace=NS)).to_dict())

    async def wait_ready(self, name: str, within: float = 600) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            obj = await self.app(name)
            if is_ready(obj) and not (obj.get("status") or {}).get("currentFlow"):
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{name} not Ready after {within}s")

    def members(self, app: str) -> dict[str, str]:
        found = {}
        for runtime in self.control.runtimes.values():
            for (ns, pod), box in runtime.pods.items():
                if ns == NS and pod.startswith(f"{app}-zookeeper-") and not box.terminating:
                    found[pod] = box.ip
        return found

    async def wait_quorum(self, app: str, size: int, within: float = 300) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            roles = [await mntr_state(ip) for ip in self.members(app).values()]
            if len(roles) == size and sorted(roles) == ["follower"] * (size - 1) + ["leader"]:
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"no quorum of {size} for {app} within {within}s")


async def mntr_state(ip: str) -> str:
    try:
        async with asyncio.timeout(2):
            reader, writer = await asyncio.open_connection(ip, 2181)
            writer.write(b"mntr")
            data = (await reader.read()).decode(errors="replace")
            writer.close()
    except (OSError, TimeoutError):
        return ""
    for line in data.splitlines():
        if line.startswith("zk_server_state"):
            return line.split("\t", 1)[1].strip()
    return ""


class Writer:
    """A znode every 50 ms from its own thread; the longest gap between acknowledged ones."""

    def __init__(self, hosts: str) -> None:
        self.hosts = hosts
        self.acked = 0
        self.longest_gap = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        client = KazooClient(hosts=self.hosts, timeout=10.0, connection_retry={"max_tries": -1})
        client.start(timeout=30)
        client.ensure_path("/bench")
        last = time.monotonic()
        try:
            while not self._stop.is_set():
                with contextlib.suppress(KazooException, KazooTimeoutError):
                    client.create("/bench/w-", b"x", sequence=True)
                    now = time.monotonic()
                    self.longest_gap = max(self.longest_gap, now - last)
                    last = now
                    self.acked += 1
                self._stop.wait(0.05)
        finally:
            client.stop()
            client.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def pod_ready(pod: dict[str, Any] | None, old_uid: str) -> bool:
    if not pod or pod["metadata"]["uid"] == old_uid:
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def group_rss(pgid: int) -> float:
    total = 0.0
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if os.getpgid(proc.pid) == pgid:
                total += proc.memory_info().rss / 2**20
    return total


async def ensembles(tmp: Path) -> None:
    names = ["mgmt", *(m.name for m in MEMBERS)]
    topology = {m.name: (m.region, m.zone) for m in MEMBERS}
    async with (
        SimulatedClusters(names, kubeconfig_path=tmp / "kubeconfig") as sim,
        ControlledClusters(
            sim,
            nodes=4,
            config=ControlPlaneConfig.fast(crash_backoff=1.0),
            topology=topology,
            admin=False,
            images=demo_images(),
            state_dir=tmp / "state",
        ) as control,
    ):
        bench = Bench(sim, control)
        await install_crds(bench.client)
        await prepare_members(sim.kubeconfig_path, MEMBERS)
        await register_members(bench.client, sim.kubeconfig_path.read_text(), MEMBERS)
        settings = OperatorSettings(
            leader_election=False, heartbeat_interval=0.5, engine_poll_interval=0.1
        )
        operator = Operator(sim.kubeconfig_path, "mgmt", settings)
        task = asyncio.create_task(operator.run_forever())
        await operator.wait_until_leading(60)
        try:
            for name, sizes in (
                ("zk3", {"phx": 1, "slc": 1, "ams": 1}),
                ("zk5", {"phx": 2, "slc": 2, "ams": 1}),
            ):
                size = sum(sizes.values())
                started = time.monotonic()
                await apply_documents(bench.client, zookeeper_app(name, sizes), "default")
                await bench.wait_ready(name)
                ready = time.monotonic() - started
                await bench.wait_quorum(name, size)
                quorum = time.monotonic() - started
                print(
                    f"{size}-member ensemble: Ready in {ready:.1f} s, "
                    f"quorum answering mntr in {quorum:.1f} s"
                )
            await restart_figures(bench, control)
            await etcd_figures(bench, control)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await bench.client.close()


async def restart_figures(bench: Bench, control: ControlledClusters) -> None:
    members = bench.members("zk5")
    pids = []
    for runtime in control.runtimes.values():
        for (ns, pod), _box in runtime.pods.items():
            handle = runtime.container(ns, pod, "main")
            if ns == NS and pod.startswith("zk5-") and handle and handle.pid:
                pids.append(handle.pid)
    sizes = [group_rss(pid) for pid in pids]
    print(
        f"ZooKeeper RSS per server (container process group): "
        f"min {min(sizes):.0f} MB, max {max(sizes):.0f} MB over {len(sizes)}"
    )
    # one member alone: from its pod's deletion to its replacement's Ready condition
    victim = sorted(members)[0]
    cluster = next(c for c, r in control.runtimes.items() if (NS, victim) in r.pods)
    plane = control.planes[cluster]
    old_uid = (plane.pods.get(NS, victim) or {})["metadata"]["uid"]
    started = time.monotonic()
    bench.sim[cluster].api.delete("v1/pods", victim, namespace=NS)
    for _ in range(6000):
        if pod_ready(plane.pods.get(NS, victim), old_uid):
            break
        await asyncio.sleep(0.05)
    single = time.monotonic() - started
    await bench.wait_ready("zk5")
    await bench.wait_quorum("zk5", 5)
    max_down = (5 - 1) // 2
    bound = math.ceil(5 / max_down) * single
    writer = Writer(",".join(f"{ip}:2181" for ip in bench.members("zk5").values()))
    writer.start()
    await asyncio.sleep(2)
    started = time.monotonic()
    await request_restart(bench.client, "zk5", NS, "zookeeper", _now())
    await asyncio.sleep(2)
    await bench.wait_ready("zk5")
    await bench.wait_quorum("zk5", 5)
    rolling = time.monotonic() - started
    await asyncio.to_thread(writer.stop)
    print(
        f"rolling restart of 5 real members: {rolling:.1f} s; policy lower bound "
        f"{bound:.1f} s (ceil(5/{max_down}) batches x {single:.1f} s from one member's "
        "deletion to its replacement's Ready)"
    )
    print(
        f"writer: {writer.acked} acknowledged writes, longest gap between two "
        f"{writer.longest_gap:.2f} s"
    )


async def etcd_figures(bench: Bench, control: ControlledClusters) -> None:
    text = (
        (ROOT / "examples" / "etcd.yaml")
        .read_text()
        .replace("namespace: etcd-demo", f"namespace: {NS}")
    )
    await apply_documents(bench.client, text, "default")
    await bench.wait_ready("config-store")
    sizes = []
    for runtime in control.runtimes.values():
        for (ns, pod), _box in runtime.pods.items():
            handle = runtime.container(ns, pod, "main")
            if ns == NS and pod.startswith("config-store-") and handle and handle.pid:
                sizes.append(group_rss(handle.pid))
    print(
        f"etcd RSS per server: min {min(sizes):.0f} MB, max {max(sizes):.0f} MB over {len(sizes)}"
    )


async def demo_rss(tmp: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "milkyway.cli.main",
        "demo",
        "--fast",
        "--timeout",
        "900",
        f"--kubeconfig={tmp / 'demo' / 'kubeconfig'}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert proc.stdout is not None
    started = time.monotonic()
    try:
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 900)
            if not line:
                print("demo ended before Ready")
                return
            if b"Everything is Ready" in line:
                break
        ready = time.monotonic() - started
        root = psutil.Process(proc.pid)
        tree = [root, *root.children(recursive=True)]
        total = sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20
        own = root.memory_info().rss / 2**20
        print(
            f"milkyway demo --fast: Ready in {ready:.0f} s; RSS {total:.0f} MB in total "
            f"({own:.0f} MB the simulator and operator, {len(tree) - 1} processes it started)"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.communicate(), 60)
        if proc.returncode is None:
            proc.kill()


async def main() -> None:
    logging.getLogger("kazoo").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-demo", action="store_true", help="Leave out the demo's RSS.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await ensembles(Path(tmp))
        if not args.skip_demo:
            await demo_rss(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())

"""Sharded operator replicas: time to Ready, and what a killed replica costs.

Three ``milkyway operator run --shards 6`` processes (default Lease timings: 15 s lease,
10 s renew deadline, 2 s retry; 15 s FlowRun lease) work on simulated clusters held in
this process. Printed, with the machine's load:

* time to Ready of ``--apps`` one-member ZooKeeper Applications created at once on the
  three replicas, and (baseline, same process) on one replica without shards;
* then a second batch is created and, once the replica chosen as victim drives its
  provisions, that replica is killed (SIGKILL: no Lease released, no run handed over).
  Takeover: the time until every shard Lease it held has another holder. Resume: the
  time until each of its interrupted FlowRuns is claimed by another replica. Ready: the
  time until the victim's Applications are all Ready.

Run: .venv/bin/python bench/operator_shards.py [--apps 60] [--batch 12] [--no-baseline]
     [--log-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

from lightkube import AsyncClient, KubeConfig
from lightkube.operators import in_
from lightkube.resources.coordination_v1 import Lease

sys.path.insert(0, str(Path(__file__).parent))

from milkyway.cli.demo import is_ready, register_members
from milkyway.kube.labels import APPLICATION as APP_LABEL
from milkyway.kube.resources import APPLICATION, FLOWRUN
from milkyway.operator.crd_install import install_crds
from milkyway.operator.gc_pauses import GcPauses
from milkyway.operator.sharding import (
    MEMBER_LEASE_PREFIX,
    SHARD_LEASE_PREFIX,
    shard_lease_name,
    shard_of,
)
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig
from operator_common import (
    MANAGEMENT,
    Bench,
    application,
    big_nodes,
    members,
    percentile,
    steady_nodes,
)

SHARDS = 6
REPLICAS = 3
NAMESPACE = "shards"
SYSTEM = "milkyway-system"


async def start_replica(
    kubeconfig: Path, identity: str, log: Path, extra: Sequence[str]
) -> asyncio.subprocess.Process:
    out = log.open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "milkyway.cli.main",
        "operator",
        "run",
        f"--kubeconfig={kubeconfig}",
        f"--context={MANAGEMENT}",
        f"--identity={identity}",
        *extra,
        stdout=out,
        stderr=out,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out.close()
    return process


async def stop_replica(process: asyncio.subprocess.Process, grace: float = 20.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            process.kill()
    await process.wait()


@contextlib.asynccontextmanager
async def world(
    workdir: Path, replicas: int, extra: Sequence[str], log_dir: Path | None = None
) -> AsyncIterator[tuple[Bench, dict[str, asyncio.subprocess.Process]]]:
    pauses = GcPauses()
    cluster_members = members(2)
    nodes = {m.name: big_nodes(m.name, m.region, m.zone, 2) for m in cluster_members}
    nodes[MANAGEMENT] = []
    names = [MANAGEMENT, *(m.name for m in cluster_members)]
    config = steady_nodes(ControlPlaneConfig.fast())
    async with (
        SimulatedClusters(names, kubeconfig_path=workdir / "kubeconfig") as sim,
        ControlledClusters(sim, nodes=nodes, config=config, admin=False) as control,
    ):
        client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get(MANAGEMENT))
        await install_crds(client)
        await register_members(client, sim.kubeconfig_path.read_text(), cluster_members)
        processes = {
            f"op-{i}": await start_replica(
                sim.kubeconfig_path, f"op-{i}", workdir / f"op-{i}.log", extra
            )
            for i in range(replicas)
        }
        bench = Bench(
            sim, control, client, cluster_members, processes["op-0"], workdir / "op-0.log", pauses
        )
        try:
            yield bench, processes
        finally:
            for process in processes.values():
                await stop_replica(process)
            await client.close()
            if log_dir is not None:
                os.makedirs(log_dir, exist_ok=True)
                for identity in processes:
                    shutil.copyfile(workdir / f"{identity}.log", log_dir / f"{identity}.log")


async def shard_holders(client: AsyncClient) -> dict[int, str]:
    holders: dict[int, str] = {}
    async for lease in client.list(Lease, namespace=SYSTEM):
        name = lease.metadata.name if lease.metadata else ""
        if not name or not name.startswith(SHARD_LEASE_PREFIX) or lease.spec is None:
            continue
        for shard in range(SHARDS):
            if name == shard_lease_name(shard, SHARDS) and lease.spec.holderIdentity:
                holders[shard] = lease.spec.holderIdentity
    return holders


async def wait_for(check: Callable[[], Awaitable[object]], limit: float, what: str) -> float:
    """Seconds until ``check()`` is truthy (polled every 100 ms)."""
    start = time.monotonic()
    while True:
        value = await check()
        if value:
            return time.monotonic() - start
        if time.monotonic() - start > limit:
            raise TimeoutError(f"{what}: not within {limit:.0f}s")
        await asyncio.sleep(0.1)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def apps(prefix: str, count: int, bench: Bench) -> list[dict[str, object]]:
    zones = [m.zone for m in bench.members]
    return [
        application(
            f"{prefix}-{i}",
            NAMESPACE,
            [("zookeeper", "3.8.4", {zones[i % len(zones)]: 1})],
            bench.region_of,
        )
        for i in range(count)
    ]


async def time_to_ready(bench: Bench, count: int) -> float:
    start = time.monotonic()
    await bench.create(apps("app", count, bench))
    await bench.wait_ready(NAMESPACE, count, limit=max(300, count * 5))
    return time.monotonic() - start


async def baseline(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mw-shards-") as tmp:
        async with world(Path(tmp), 1, ()) as (bench, _):
            took = await time_to_ready(bench, count)
    print(f"1 replica, no shards: {count} Applications Ready in {took:.1f}s ({load()})")


async def sharded(count: int, batch: int, log_dir: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="mw-shards-") as tmp:
        extra = (f"--shards={SHARDS}",)
        async with world(Path(tmp), REPLICAS, extra, log_dir) as (bench, processes):
            client = bench.client

            async def all_up() -> bool:
                alive = 0
                async for lease in client.list(Lease, namespace=SYSTEM):
                    if lease.metadata and lease.metadata.name.startswith(MEMBER_LEASE_PREFIX):
                        alive += 1
                return alive == REPLICAS

            up = await wait_for(all_up, 120, "replicas up")

            async def all_held() -> bool:
                holders = await shard_holders(client)
                per = [sum(1 for h in holders.values() if h == p) for p in processes]
                return len(holders) == SHARDS and min(per) == SHARDS // REPLICAS

            balanced = await wait_for(all_held, 120, "shards balanced")
            print(
                f"{REPLICAS} replicas, {SHARDS} shards: every replica up {up:.1f}s after start "
                f"(process start-up, CRDs), shards balanced {balanced:.1f}s later"
            )
            took = await time_to_ready(bench, count)
            print(
                f"{REPLICAS} replicas, {SHARDS} shards: {count} Applications Ready in "
                f"{took:.1f}s ({load()})"
            )

            holders = await shard_holders(client)
            second = apps("late", batch, bench)
            names = [str(a["metadata"]["name"]) for a in second]  # type: ignore[index]

            def apps_of(replica: str) -> list[str]:
                held = {s for s, h in holders.items() if h == replica}
                return [n for n in names if shard_of(NAMESPACE, n, SHARDS) in held]

            victim = max(processes, key=lambda replica: len(apps_of(replica)))
            lost = {s for s, h in holders.items() if h == victim}
            theirs = apps_of(victim)
            interrupted = await kill_when_driving(bench, second, theirs, victim, processes)

            killed = time.monotonic()

            async def taken_over() -> bool:
                now = await shard_holders(client)
                return all(now.get(s) not in (None, victim) for s in lost)

            takeover = await wait_for(taken_over, 120, "shards taken over")
            resumed: dict[str, float] = {}

            async def all_resumed() -> bool:
                mine = {APP_LABEL: in_(list(theirs))}
                async for run in client.list(FLOWRUN, namespace=NAMESPACE, labels=mine):
                    data = run.to_dict()
                    name = data["metadata"]["name"]
                    owner = (data.get("status") or {}).get("owner")
                    phase = (data.get("status") or {}).get("phase")
                    moved = owner not in (None, "", victim) or phase == "Succeeded"
                    if name in interrupted and name not in resumed and moved:
                        resumed[name] = time.monotonic() - killed
                return len(resumed) == len(interrupted)

            await wait_for(all_resumed, 180, "runs resumed")

            async def theirs_ready() -> bool:
                ready = 0
                async for item in client.list(APPLICATION, namespace=NAMESPACE):
                    data = item.to_dict()
                    if data["metadata"]["name"] in theirs and is_ready(data):
                        ready += 1
                return ready == len(theirs)

            await wait_for(theirs_ready, 300, "the victim's Applications Ready")
            ready_after = time.monotonic() - killed
            times = list(resumed.values())
            print(
                f"killed {victim} (SIGKILL) holding shards {sorted(lost)} while it drove "
                f"{len(interrupted)} provisions of {len(theirs)} Applications:"
            )
            print(f"  shard Leases taken over after {takeover:.1f}s (lease 15 s)")
            print(
                f"  its FlowRuns resumed by another replica after p50 "
                f"{percentile(times, 50):.1f}s, max {max(times):.1f}s (run lease 15 s)"
            )
            print(f"  its Applications all Ready {ready_after:.1f}s after the kill ({load()})")


async def kill_when_driving(
    bench: Bench,
    second: Sequence[dict[str, object]],
    theirs: Sequence[str],
    victim: str,
    processes: dict[str, asyncio.subprocess.Process],
) -> list[str]:
    """Create ``second`` and SIGKILL ``victim`` as soon as it drives the provisions of its
    Applications (``theirs``), seen by a watch (a provision lasts seconds: a poll of every
    FlowRun may miss it); returns the runs it was driving."""
    driving: dict[str, bool] = {}
    first_seen: list[float] = []
    labels = {APP_LABEL: in_(list(theirs))}

    async def watch() -> None:
        async for _, run in bench.client.watch(FLOWRUN, namespace=NAMESPACE, labels=labels):
            data = run.to_dict()
            status = data.get("status") or {}
            ours = status.get("owner") == victim and status.get("phase") == "Running"
            driving[data["metadata"]["name"]] = ours
            if ours and not first_seen:
                first_seen.append(time.monotonic())

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.sleep(0.5)
        await bench.create(second)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            driven = [name for name, ours in driving.items() if ours]
            if len(driven) == len(theirs) or (first_seen and time.monotonic() - first_seen[0] > 1):
                processes[victim].send_signal(signal.SIGKILL)
                await processes[victim].wait()
                return driven
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{victim} drove none of {list(theirs)} within 120s")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def main() -> None:
    logging.getLogger("milkyway.sim").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--log-dir", type=Path, help="keep the replicas' logs here")
    args = parser.parse_args()
    if not args.no_baseline:
        await baseline(args.apps)
    await sharded(args.apps, args.batch, args.log_dir)


if __name__ == "__main__":
    asyncio.run(main())

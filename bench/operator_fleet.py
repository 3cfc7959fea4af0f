"""A fleet of small Applications on sharded operator replicas: time to Ready, RSS, CPU and
reaction latency of each replica.

``--apps`` Applications (default 10,000), each a three-member ZooKeeper in one zone,
spread round-robin over ``--clusters`` simulated member clusters held in this process.
``--replicas`` ``milkyway operator run --shards auto`` processes share them: the count
follows a Deployment ``milkyway-system/milkyway-operator`` with ``spec.replicas`` set to
the replica count, created in the simulated management cluster (which has no nodes: its
pods stay Pending; the replicas run as processes of this machine, as on a laptop).

Printed, with the machine's load:

* when every replica is up and the shards are balanced;
* time to Ready of every Application, created at once (cold: no member object exists),
  with the pace every ``--report`` seconds;
* per replica, once everything is Ready: shards held, RSS, and CPU over ``--window``
  seconds of steady state;
* reaction latency: ``--samples`` changes of an Application's spec (a JSON patch of a
  ZooKeeper parameter) to its config-update FlowRun appearing, p50/p99 overall and by
  the replica that started it;
* with ``--baseline``, the same time to Ready on one replica without shards, first, in
  the same process (long at 10,000: it is off by default).

Run: .venv/bin/python bench/operator_fleet.py [--apps 10000] [--replicas 3] [--clusters 10]
     [--samples 200] [--window 60] [--baseline] [--log-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import psutil
from lightkube import AsyncClient, KubeConfig
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.coordination_v1 import Lease
from lightkube.types import PatchType

sys.path.insert(0, str(Path(__file__).parent))

from milkyway.cli.demo import is_ready, register_members
from milkyway.kube.labels import APPLICATION as APP_LABEL
from milkyway.kube.resources import APPLICATION, FLOWRUN
from milkyway.operator.crd_install import install_crds
from milkyway.operator.gc_pauses import GcPauses
from milkyway.operator.reconciler import OPERATION_LABEL
from milkyway.operator.sharding import SHARD_LEASE_PREFIX, count_in_name, shard_of
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
from operator_shards import load, start_replica, stop_replica

NAMESPACE = "fleet"
SYSTEM = "milkyway-system"


@dataclass
class Fleet:
    bench: Bench
    replicas: dict[str, asyncio.subprocess.Process]

    def process(self, identity: str) -> psutil.Process:
        return psutil.Process(self.replicas[identity].pid)


def operator_deployment(replicas: int) -> Deployment:
    labels = {"app.kubernetes.io/name": "milkyway-operator"}
    return Deployment.from_dict(
        {
            "metadata": {"name": "milkyway-operator", "namespace": SYSTEM},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "operator", "image": "milkyway:bench"}]},
                },
            },
        }
    )


@contextlib.asynccontextmanager
async def fleet_world(
    workdir: Path, clusters: int, replicas: int, sharded: bool, log_dir: Path | None
) -> AsyncIterator[Fleet]:
    pauses = GcPauses()
    pauses.install()
    cluster_members = members(clusters)
    nodes = {m.name: big_nodes(m.name, m.region, m.zone, 3) for m in cluster_members}
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
        extra: tuple[str, ...] = (f"--namespace={SYSTEM}", "--no-install-crds")
        if sharded:
            await client.create(operator_deployment(replicas), namespace=SYSTEM)
            extra += ("--shards=auto",)
        else:
            extra += ("--no-leader-election",)
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
            yield Fleet(bench, processes)
        finally:
            pauses.uninstall()
            for process in processes.values():
                await stop_replica(process, grace=30.0)
            await client.close()
            if log_dir is not None:
                os.makedirs(log_dir, exist_ok=True)
                for identity in processes:
                    shutil.copyfile(workdir / f"{identity}.log", log_dir / f"fleet-{identity}.log")


def fleet_apps(count: int, bench: Bench) -> list[dict[str, Any]]:
    zones = [m.zone for m in bench.members]
    return [
        application(
            f"app-{i}",
            NAMESPACE,
            [("zookeeper", "3.8.4", {zones[i % len(zones)]: 3})],
            bench.region_of,
        )
        for i in range(count)
    ]


async def shard_holders(client: AsyncClient, shards: int) -> dict[str, list[int]]:
    """Replica -> the shards (of ``shards``) whose Lease it holds."""
    held: dict[str, list[int]] = {}
    async for lease in client.list(Lease, namespace=SYSTEM):
        name = lease.metadata.name if lease.metadata else ""
        if not name.startswith(SHARD_LEASE_PREFIX) or count_in_name(name) != shards:
            continue
        holder = lease.spec.holderIdentity if lease.spec else None
        if holder:
            shard = int(name[len(SHARD_LEASE_PREFIX) :].split("-of-")[0])
            held.setdefault(holder, []).append(shard)
    return held


async def wait_balanced(fleet: Fleet, limit: float) -> float:
    """Seconds until every one of the ``replicas`` shards is held, one per replica."""
    start = time.monotonic()
    count = len(fleet.replicas)
    while True:
        held = await shard_holders(fleet.bench.client, count)
        if sorted(held) == sorted(fleet.replicas) and all(len(s) == 1 for s in held.values()):
            return time.monotonic() - start
        if time.monotonic() - start > limit:
            raise TimeoutError(f"shards not balanced within {limit:.0f}s: {held}")
        await asyncio.sleep(0.2)


async def wait_ready(fleet: Fleet, count: int, limit: float, report: float) -> float:
    """Seconds until ``count`` Applications are Ready, printing the pace every ``report``
    seconds with each replica's CPU and RSS and the simulator's."""
    start = reported = time.monotonic()
    simulator = psutil.Process()
    client = fleet.bench.client
    while True:
        ready = 0
        try:
            async for item in client.list(APPLICATION, namespace=NAMESPACE):
                if is_ready(item.to_dict()):
                    ready += 1
        except httpx2.TimeoutException:
            ready = 0
        now = time.monotonic()
        if ready >= count:
            return now - start
        if now - reported >= report:
            reported = now
            replicas = "; ".join(
                f"{who} CPU {sum(fleet.process(who).cpu_times()[:2]):.0f}s "
                f"RSS {fleet.process(who).memory_info().rss / 2**20:.0f} MiB"
                for who in fleet.replicas
            )
            print(
                f"  {now - start:5.0f}s: {ready}/{count} Ready; {replicas}; simulator CPU "
                f"{sum(simulator.cpu_times()[:2]):.0f}s RSS "
                f"{simulator.memory_info().rss / 2**20:.0f} MiB; {load()}",
                flush=True,
            )
        if now - start > limit:
            raise TimeoutError(f"{ready}/{count} Applications Ready after {limit:.0f}s")
        await asyncio.sleep(2.0)


async def steady(fleet: Fleet, window: float) -> dict[str, tuple[float, float, float]]:
    """Per replica: RSS now, peak RSS and CPU % of one core over ``window`` seconds."""
    procs = {who: fleet.process(who) for who in fleet.replicas}
    before = {who: p.cpu_times() for who, p in procs.items()}
    peak = dict.fromkeys(procs, 0)
    start = time.monotonic()
    while time.monotonic() - start < window:
        for who, p in procs.items():
            peak[who] = max(peak[who], p.memory_info().rss)
        await asyncio.sleep(1.0)
    wall = time.monotonic() - start
    result = {}
    for who, p in procs.items():
        after = p.cpu_times()
        busy = (after.user - before[who].user) + (after.system - before[who].system)
        result[who] = (p.memory_info().rss / 2**20, peak[who] / 2**20, 100 * busy / wall)
    return result


async def reactions(
    fleet: Fleet, count: int, samples: int
) -> tuple[list[float], dict[str, list[float]]]:
    """Spec change -> config-update FlowRun, for ``samples`` Applications spread over the
    fleet; latencies overall and by the replica that reconciled the Application."""
    client = fleet.bench.client
    seen: dict[str, float] = {}
    arrived = asyncio.Event()

    async def watch() -> None:
        updates = {OPERATION_LABEL: "config-update"}
        async for event, run in client.watch(FLOWRUN, namespace=NAMESPACE, labels=updates):
            app = (run.metadata.labels or {}).get(APP_LABEL)
            if event == "ADDED" and app and app not in seen:
                seen[app] = time.monotonic()
                arrived.set()

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(1.0)
    seen.clear()
    overall: list[float] = []
    step = max(1, count // samples)
    started: dict[str, float] = {}
    try:
        for k in range(samples):
            name = f"app-{(k * step) % count}"
            seen.pop(name, None)
            arrived.clear()
            patch = [
                {"op": "add", "path": "/spec/components/0/params", "value": {"tickTime": 3000 + k}}
            ]
            start = time.monotonic()
            await client.patch(
                APPLICATION, name, patch, namespace=NAMESPACE, patch_type=PatchType.JSON
            )
            deadline = start + 30
            while name not in seen and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), deadline - time.monotonic())
                arrived.clear()
            if name in seen:
                overall.append(seen[name] - start)
                started[name] = seen[name] - start
            else:
                print(f"  {name}: no config-update FlowRun within 30 s", flush=True)
            await asyncio.sleep(0.1)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    by_replica = await _by_replica(client, started, len(fleet.replicas))
    return overall, by_replica


async def _by_replica(
    client: AsyncClient, latencies: dict[str, float], shards: int
) -> dict[str, list[float]]:
    """The samples grouped by the replica holding each Application's shard now."""
    holder = {
        shard: who for who, held in (await shard_holders(client, shards)).items() for shard in held
    }
    grouped: dict[str, list[float]] = {}
    for app, latency in latencies.items():
        who = holder.get(shard_of(NAMESPACE, app, shards), "?")
        grouped.setdefault(who, []).append(latency)
    return grouped


def ms(values: Sequence[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.0f} ms"


async def run_fleet(args: argparse.Namespace, replicas: int, sharded: bool) -> None:
    label = f"{replicas} replicas, --shards auto" if sharded else "1 replica, no shards"
    with tempfile.TemporaryDirectory(prefix="mw-fleet-") as tmp:
        async with fleet_world(Path(tmp), args.clusters, replicas, sharded, args.log_dir) as fleet:
            if sharded:
                balanced = await wait_balanced(fleet, 300)
                print(f"{label}: shards balanced {balanced:.1f}s after start", flush=True)
            apps = fleet_apps(args.apps, fleet.bench)
            start = time.monotonic()
            await fleet.bench.create(apps, parallel=40)
            created = time.monotonic() - start
            took = created + await wait_ready(fleet, args.apps, args.limit, args.report)
            print(
                f"{label}: {args.apps} Applications ({3 * args.apps} pods) over "
                f"{args.clusters} clusters Ready {took:.0f}s after the first was created "
                f"(creating them took {created:.0f}s; {load()})",
                flush=True,
            )
            if not sharded:
                return
            await asyncio.sleep(5)
            held = await shard_holders(fleet.bench.client, replicas)
            for who, (rss, peak, cpu) in (await steady(fleet, args.window)).items():
                print(
                    f"  {who}: shards {sorted(held.get(who, []))}, RSS {rss:.0f} MiB (peak "
                    f"{peak:.0f}), CPU {cpu:.1f}% of one core over {args.window:.0f}s steady",
                    flush=True,
                )
            overall, by = await reactions(fleet, args.apps, args.samples)
            print(
                f"{label}: change -> FlowRun p50 {ms(overall, 50)}, p99 {ms(overall, 99)} "
                f"({len(overall)} samples; {load()})",
                flush=True,
            )
            for who, values in sorted(by.items()):
                print(
                    f"  reconciled by {who}: p50 {ms(values, 50)}, p99 {ms(values, 99)} "
                    f"({len(values)} samples)",
                    flush=True,
                )
            spread = Counter({who: len(values) for who, values in by.items()})
            if len(spread) < replicas:
                print(f"  only {len(spread)} of {replicas} replicas started a sampled flow")


async def main() -> None:
    logging.getLogger("milkyway.sim").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--report", type=float, default=60.0, help="seconds between progress")
    parser.add_argument("--limit", type=float, default=7200.0, help="seconds to reach Ready")
    parser.add_argument("--baseline", action="store_true", help="one replica first")
    parser.add_argument("--log-dir", type=Path, help="keep the replicas' logs here")
    args = parser.parse_args()
    if args.baseline:
        await run_fleet(args, 1, sharded=False)
    await run_fleet(args, args.replicas, sharded=True)


if __name__ == "__main__":
    asyncio.run(main())

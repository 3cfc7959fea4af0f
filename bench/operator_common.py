"""Shared set-up of the operator benchmarks: simulated clusters with a control plane, the
CRDs, member clusters registered as Clusters, and ``milkyway operator run`` in its own
process (so its RSS and CPU are its own, and the benchmark's watches do not share its
event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx2
import psutil
import yaml
from lightkube import AsyncClient, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from milkyway.cli.demo import MemberCluster, is_ready, register_members
from milkyway.kube.resources import APPLICATION
from milkyway.operator.crd_install import install_crds
from milkyway.operator.gc_pauses import GcPauses
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.nodes import REGION_LABEL, ZONE_LABEL, NodeSpec

MANAGEMENT = "mgmt"


def steady_nodes(config: ControlPlaneConfig) -> ControlPlaneConfig:
    """``config`` with a real cluster's node heartbeat and grace period: on a loaded machine
    the fast simulator timings let nodes miss a heartbeat and turn NotReady, and the
    operator rightly replaces their members, which is not what these benchmarks measure."""
    return replace(
        config, heartbeat_interval=5.0, node_grace_period=40.0, pod_eviction_timeout=60.0
    )


def members(count: int) -> list[MemberCluster]:
    """``count`` member clusters, two regions, one zone each (``z0``, ``z1``, …)."""
    return [
        MemberCluster(f"m{i}", "NA" if i < (count + 1) // 2 else "EU", f"z{i}")
        for i in range(count)
    ]


def big_nodes(cluster: str, region: str, zone: str, count: int) -> list[NodeSpec]:
    """Nodes large enough that capacity never limits a benchmark."""
    return [
        NodeSpec(
            name=f"{cluster}-node-{i}",
            labels={REGION_LABEL: region, ZONE_LABEL: zone},
            cpu="4000",
            memory="16Ti",
            pods=5000,
        )
        for i in range(count)
    ]


def application(
    name: str,
    namespace: str,
    components: Sequence[tuple[str, str, Mapping[str, int]]],
    region_of: Mapping[str, str],
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An Application of ``(component name, version, {zone: size})`` entries whose type is
    inferred from the name (``zookeeper``, ``kafka``, …)."""
    spec_components = []
    for component, version, zones in components:
        by_region: dict[str, list[dict[str, Any]]] = {}
        for zone, size in zones.items():
            by_region.setdefault(region_of[zone], []).append({"name": zone, "size": size})
        entry: dict[str, Any] = {
            "name": component,
            "version": version,
            "regions": [{"name": r, "zones": z} for r, z in by_region.items()],
        }
        if params and component in params:
            entry["params"] = dict(params[component])
        spec_components.append(entry)
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"components": spec_components},
    }


@dataclass
class Bench:
    sim: SimulatedClusters
    control: ControlledClusters
    client: AsyncClient
    members: list[MemberCluster]
    operator: asyncio.subprocess.Process
    log: Path
    gc_pauses: GcPauses
    """This (the simulator's) process's garbage collections."""

    @property
    def kubeconfig(self) -> Path:
        return Path(self.sim.kubeconfig_path)

    @property
    def region_of(self) -> dict[str, str]:
        return {m.zone: m.region for m in self.members}

    def client_for(self, cluster: str) -> AsyncClient:
        """A client of one member cluster; the caller closes it."""
        return AsyncClient(KubeConfig.from_file(self.kubeconfig).get(cluster))

    def operator_process(self) -> psutil.Process:
        return psutil.Process(self.operator.pid)

    async def create(self, apps: Sequence[dict[str, Any]], parallel: int = 20) -> None:
        namespaces = {a["metadata"]["namespace"] for a in apps}
        for ns in namespaces:
            with contextlib.suppress(Exception):
                await self.client.create(Namespace(metadata=ObjectMeta(name=ns)))
        queue = list(apps)

        async def worker() -> None:
            while queue:
                app = queue.pop()
                await self.client.create(APPLICATION(app))

        await asyncio.gather(*(worker() for _ in range(parallel)))

    async def wait_ready(
        self, namespace: str, count: int, limit: float, report_every: float | None = None
    ) -> float:
        """Seconds until ``count`` Applications of ``namespace`` are Ready; with
        ``report_every``, how many are Ready (and the processes' CPU and RSS) is printed
        that often, so a long provisioning shows its pace and who is busy."""
        start = time.monotonic()
        reported = start
        operator = self.operator_process()
        simulator = psutil.Process()
        while True:
            ready = 0
            try:
                async for item in self.client.list(APPLICATION, namespace=namespace):
                    if is_ready(item.to_dict()):
                        ready += 1
            except httpx2.TimeoutException:
                ready = 0
            if ready >= count:
                return time.monotonic() - start
            if report_every is not None and time.monotonic() - reported >= report_every:
                reported = time.monotonic()
                print(
                    f"  {reported - start:5.0f}s: {ready}/{count} Ready; CPU so far: operator "
                    f"{sum(operator.cpu_times()[:2]):.0f}s, simulator "
                    f"{sum(simulator.cpu_times()[:2]):.0f}s; RSS: operator "
                    f"{operator.memory_info().rss / 2**20:.0f} MiB, simulator "
                    f"{simulator.memory_info().rss / 2**20:.0f} MiB; simulator's longest "
                    f"garbage collection {self.gc_pauses.generations[2].longest:.1f}s",
                    flush=True,
                )
            if time.monotonic() - start > limit:
                raise TimeoutError(
                    f"{ready}/{count} Applications Ready after {limit:.0f}s; "
                    f"operator log: {self.log}"
                )
            await asyncio.sleep(1.0)


@contextlib.asynccontextmanager
async def bench_world(
    workdir: Path,
    member_count: int,
    *,
    config: ControlPlaneConfig,
    nodes: int = 3,
    operator_args: Sequence[str] = (),
    keep_log: Path | None = None,
) -> AsyncIterator[Bench]:
    """The simulated clusters and the operator; ``keep_log``: where to copy the operator's
    log when done (the work directory is usually temporary)."""
    # The simulated clusters hold every object of every cluster in this process; their
    # garbage collections stall every simulated API server at once, so their longest
    # pause is reported. Freezing survivors as the operator does is no remedy here: the
    # simulator's request handling leaves reference cycles behind, and frozen ones leak
    # (at 1,000 Applications its RSS reached 11 GB in five minutes instead of 5 GB).
    pauses = GcPauses()
    pauses.install()
    cluster_members = members(member_count)
    node_specs = {m.name: big_nodes(m.name, m.region, m.zone, nodes) for m in cluster_members}
    node_specs[MANAGEMENT] = []
    names = [MANAGEMENT, *(m.name for m in cluster_members)]
    async with (
        SimulatedClusters(names, kubeconfig_path=workdir / "kubeconfig") as sim,
        ControlledClusters(sim, nodes=node_specs, config=config, admin=False) as control,
    ):
        client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get(MANAGEMENT))
        await install_crds(client)
        await register_members(client, sim.kubeconfig_path.read_text(), cluster_members)
        log = workdir / "operator.log"
        out = log.open("wb")
        operator = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "milkyway.cli.main",
            "operator",
            "run",
            f"--kubeconfig={sim.kubeconfig_path}",
            f"--context={MANAGEMENT}",
            "--no-leader-election",
            *operator_args,
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        out.close()
        try:
            yield Bench(sim, control, client, cluster_members, operator, log, pauses)
        finally:
            pauses.uninstall()
            with contextlib.suppress(ProcessLookupError):
                operator.terminate()
                try:
                    await asyncio.wait_for(operator.wait(), 10)
                except TimeoutError:
                    operator.kill()
            await operator.wait()
            await client.close()
            if keep_log is not None:
                keep_log.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(log, keep_log)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False)

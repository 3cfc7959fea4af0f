"""Benchmark of the simulated control plane (scheduler, kubelets, controllers).

Prints:
  1. the time a 3-cluster simulation takes to bring N StatefulSets x 3 replicas to Ready
     with zero stage delays (the simulator's own overhead), pods Ready per second, RSS;
  2. the per-event cost (one pod killed -> replaced -> Ready again) with 1k and 30k pods in
     the cluster, and their ratio: controllers must do O(changed objects) work per event.

Run: .venv/bin/python bench/sim_controllers.py [--statefulsets 1000] [--scales 1000,30000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from typing import Any

import psutil

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.controllers.manager import start_control_plane
from milkyway.sim.controllers.runtime import ControlPlane
from milkyway.sim.nodes import NodeSpec


def statefulset(name: str, replicas: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
            },
        },
    }


def nodes(cluster: str, count: int, pods_per_node: int) -> list[NodeSpec]:
    return [
        NodeSpec(name=f"{cluster}-node-{i}", cpu="512", memory="4Ti", pods=pods_per_node)
        for i in range(count)
    ]


def config(events: bool) -> ControlPlaneConfig:
    return ControlPlaneConfig.fast(
        record_events=events,
        heartbeat_interval=30.0,
        node_monitor_period=30.0,
        node_grace_period=600.0,
    )


def ready_pods(plane: ControlPlane) -> int:
    count = 0
    for pod in plane.pods.objects.values():
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                count += 1
    return count


async def wait_ready(planes: list[ControlPlane], want: int) -> None:
    """Wait for every control plane to go idle, then check the pods really are Ready."""
    for plane in planes:
        await plane.settle(600)
    ready = sum(ready_pods(p) for p in planes)
    if ready != want:
        raise SystemExit(f"only {ready} of {want} pods became Ready")


async def bring_up(statefulsets: int, clusters: int, events: bool) -> None:
    apis = [ClusterAPI(name=f"c{i}") for i in range(clusters)]
    per_cluster_pods = -(-statefulsets // clusters) * 3
    planes = [
        start_control_plane(
            api, nodes(api.name, 3, per_cluster_pods), config(events), cluster_index=i
        )
        for i, api in enumerate(apis)
    ]
    await asyncio.gather(*(p.settle(60) for p in planes))
    rss_before = psutil.Process(os.getpid()).memory_info().rss
    cpu_before = time.process_time()
    started = time.perf_counter()
    for i in range(statefulsets):
        apis[i % clusters].create(statefulset(f"sts-{i}"))
    await wait_ready(planes, statefulsets * 3)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    rss = psutil.Process(os.getpid()).memory_info().rss
    pods = statefulsets * 3
    reconciles = sum(p.reconciles for p in planes)
    label = "with events" if events else "without events"
    print(f"bring-up ({label}): {statefulsets} StatefulSets x 3 on {clusters} clusters")
    print(f"  {pods} pods Ready in {elapsed:.2f}s wall, {cpu:.2f}s CPU (one core)")
    print(
        f"  {pods / elapsed:.0f} pods/s to Ready (wall), {pods / cpu:.0f} pods per CPU-second;  "
        f"{reconciles / pods:.1f} reconciles per pod"
    )
    print(f"  RSS {rss / 2**20:.0f} MiB (+{(rss - rss_before) / 2**20:.0f} MiB for this run)")
    for p in planes:
        await p.stop()


async def per_event_cost(total_pods: int, samples: int, node_count: int) -> tuple[float, float]:
    """Seconds of CPU per 'pod killed, replaced, Ready again' event at ``total_pods``.

    Every scale runs on the same nodes, so only the number of objects differs.
    """
    api = ClusterAPI(name="scale")
    plane = start_control_plane(api, nodes("scale", node_count, 2500), config(False))
    sets = total_pods // 3
    for i in range(sets):
        api.create(statefulset(f"sts-{i}"))
    await wait_ready([plane], sets * 3)
    # Keep the interpreter's cyclic GC from rescanning the whole heap on every event: the
    # figure is the control plane's own work per event.
    gc.collect()
    gc.freeze()
    before_reconciles = plane.reconciles
    before_deciding = plane.reconcile_seconds
    cpu_before = time.process_time()
    for i in range(samples):
        name = f"sts-{(i * 7919) % sets}-{i % 3}"
        uid = plane.pods.get("default", name)["metadata"]["uid"]  # type: ignore[index]
        api.delete("pods", name, namespace="default", grace_period_seconds=0)
        while True:
            pod = plane.pods.get("default", name)
            if (
                pod is not None
                and pod["metadata"]["uid"] != uid
                and any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (pod.get("status") or {}).get("conditions") or []
                )
            ):
                break
            await asyncio.sleep(0)
    cost = (time.process_time() - cpu_before) / samples
    per_event_reconciles = (plane.reconciles - before_reconciles) / samples
    deciding = (plane.reconcile_seconds - before_deciding) / samples
    print(
        f"  {total_pods:>6} pods: {cost * 1e3:.2f} ms CPU per event in all "
        f"({deciding * 1e3:.2f} ms in the controllers, the rest in API writes), "
        f"{per_event_reconciles:.1f} reconciles per event"
    )
    await plane.stop()
    gc.unfreeze()
    return cost, deciding


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statefulsets", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--scales", default="1000,30000", help="pod counts for the per-event cost")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    await bring_up(args.statefulsets, args.clusters, events=False)
    await bring_up(args.statefulsets, args.clusters, events=True)
    scales = [int(s) for s in args.scales.split(",") if s]
    node_count = max(3, max(scales, default=0) // 2000 + 1)
    print(
        f"per-event cost on {node_count} nodes "
        "(kill one pod; StatefulSet replaces it; kubelet makes it Ready):"
    )
    costs = [await per_event_cost(n, args.samples, node_count) for n in scales]
    if len(costs) >= 2:
        (first, first_deciding), (last, last_deciding) = costs[0], costs[-1]
        print(
            f"  ratio {scales[-1]} vs {scales[0]} pods: {last / first:.2f}x in all, "
            f"{last_deciding / first_deciding:.2f}x in the controllers "
            "(1.0x = independent of cluster size)"
        )


if __name__ == "__main__":
    asyncio.run(main())

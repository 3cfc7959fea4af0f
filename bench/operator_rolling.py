"""Rolling restarts by the operator against the bound set by the disruption policy, and
against a one-pod-at-a-time StatefulSet RollingUpdate in the same run.

Two components are restarted by a configuration change that is not hot-reloadable
(``heapMb``): Kafka over 3 zones x 3 brokers (rack-aware) and a 5-member ZooKeeper
ensemble over three zones (quorum). Every pod takes the same simulated time to stop, start
and become Ready (no jitter), measured during the run as the median time a member spends
down. The bound is the number of restart waves the policy allows times that time:

* rack-aware, ``maxUnavailable: 1``: one broker down at a time -> 9 waves;
* quorum of 5: (5-1)//2 = 2 members may be down -> ceil(5/2) = 3 waves.

The baseline is a plain StatefulSet of the same size with ``RollingUpdate`` (one pod at a
time, highest ordinal first) whose template annotation changes. Aim: within 1.2x of the
bound.

Run: .venv/bin/python bench/operator_rolling.py
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lightkube.resources.apps_v1 import StatefulSet
from lightkube.types import PatchType

sys.path.insert(0, str(Path(__file__).parent))

from milkyway.cli.app_commands import APPLICATION
from milkyway.cli.demo import is_ready
from milkyway.render.labels import APPLICATION as APP_LABEL
from milkyway.render.labels import COMPONENT as COMPONENT_LABEL
from milkyway.sim import monitor
from milkyway.sim.controllers.config import ControlPlaneConfig, StageDelays
from operator_common import Bench, application, bench_world, steady_nodes

NAMESPACE = "rolling"
DELAYS = StageDelays(creating=1.0, ready=1.0, terminating=0.5, jitter=0.0)


class Downtime:
    """Per pod: how long it was short of Ready each time it went down."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.down_since: dict[str, float] = {}
        self.spans: list[float] = []
        self.ready: set[str] = set()

    def __call__(self, t: monitor.Transition) -> None:
        if any(t.labels.get(k) != v for k, v in self.labels.items()):
            return
        key = f"{t.cluster}/{t.name}"
        now = time.monotonic()
        if t.ready:
            if key in self.down_since:
                self.spans.append(now - self.down_since.pop(key))
            self.ready.add(key)
        elif key in self.ready:
            self.ready.discard(key)
            self.down_since[key] = now


async def settled(bench: Bench, name: str) -> bool:
    obj = (await bench.client.get(APPLICATION, name, namespace=NAMESPACE)).to_dict()
    return is_ready(obj) and not (obj.get("status") or {}).get("currentFlow")


async def roll(bench: Bench, app: str, component: str, index: int, waves: int) -> None:
    tracker = Downtime({APP_LABEL: app, COMPONENT_LABEL: component})
    for member in bench.members:
        monitor.subscribe(bench.sim[member.name], tracker)
    await asyncio.sleep(0.5)
    patch = [{"op": "add", "path": f"/spec/components/{index}/params", "value": {"heapMb": 1536}}]
    start = time.monotonic()
    await bench.client.patch(
        APPLICATION, app, patch, namespace=NAMESPACE, patch_type=PatchType.JSON
    )
    await asyncio.sleep(1.0)
    while True:
        if await settled(bench, app):
            break
        await asyncio.sleep(0.1)
    took = time.monotonic() - start
    per_member = statistics.median(tracker.spans) if tracker.spans else math.nan
    bound = waves * per_member
    ratio = took / bound
    print(
        f"{app}/{component}: {len(tracker.spans)} restarts in {took:5.1f}s; member down "
        f"{per_member:.2f}s (median); policy bound {waves} waves = {bound:5.1f}s; "
        f"ratio {ratio:.2f} ({'meets' if ratio <= 1.2 else 'misses'} the 1.2x aim)",
        flush=True,
    )


def statefulset(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": {"bench": name}},
            "template": {
                "metadata": {"labels": {"bench": name}},
                "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
            },
        },
    }


async def baseline(bench: Bench, replicas: int) -> float:
    client = bench.client_for(bench.members[0].name)
    try:
        return await _baseline(client, replicas)
    finally:
        await client.close()


async def _baseline(client: Any, replicas: int) -> float:
    name = f"sts-{replicas}"
    await client.create(StatefulSet.from_dict(statefulset(name, replicas)))
    while True:
        sts = await client.get(StatefulSet, name, namespace=NAMESPACE)
        if (sts.status.readyReplicas or 0) == replicas:
            break
        await asyncio.sleep(0.1)
    patch = {"spec": {"template": {"metadata": {"annotations": {"bench/restart": "1"}}}}}
    start = time.monotonic()
    await client.patch(StatefulSet, name, patch, namespace=NAMESPACE)
    while True:
        sts = await client.get(StatefulSet, name, namespace=NAMESPACE)
        s = sts.status
        if (
            s.updateRevision
            and s.currentRevision == s.updateRevision
            and (s.updatedReplicas or 0) == replicas
            and (s.readyReplicas or 0) == replicas
        ):
            return time.monotonic() - start
        await asyncio.sleep(0.1)


async def main() -> None:
    logging.getLogger("milkyway.sim").setLevel(logging.CRITICAL)
    config = steady_nodes(ControlPlaneConfig.fast(delays=DELAYS))
    with tempfile.TemporaryDirectory(prefix="mw-rolling-") as tmp:
        async with bench_world(Path(tmp), 3, config=config, nodes=3) as bench:
            z = [m.zone for m in bench.members]
            streaming = application(
                "streaming",
                NAMESPACE,
                [
                    ("zookeeper", "3.8.4", {z[0]: 1, z[1]: 1, z[2]: 1}),
                    ("kafka", "3.9.1", {z[0]: 3, z[1]: 3, z[2]: 3}),
                ],
                bench.region_of,
            )
            ensemble = application(
                "ensemble",
                NAMESPACE,
                [("zookeeper", "3.8.4", {z[0]: 2, z[1]: 2, z[2]: 1})],
                bench.region_of,
            )
            await bench.create([streaming, ensemble])
            ready = await bench.wait_ready(NAMESPACE, 2, limit=300)
            print(f"provisioned both Applications in {ready:.1f}s", flush=True)
            await roll(bench, "streaming", "kafka", 1, waves=9)
            await roll(bench, "ensemble", "zookeeper", 0, waves=3)
            for replicas in (9, 5):
                took = await baseline(bench, replicas)
                print(
                    f"StatefulSet RollingUpdate of {replicas} pods (one at a time): {took:5.1f}s",
                    flush=True,
                )


if __name__ == "__main__":
    asyncio.run(main())

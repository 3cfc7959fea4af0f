"""Rolling restarts by the operator against the bound set by the disruption policy, and
against a one-pod-at-a-time StatefulSet RollingUpdate in the same run.

Three components are restarted by a configuration change that is not hot-reloadable
(``heapMb``): Kafka over 3 zones x 3 brokers and over 3 zones x 10 brokers (disruption
kind ``zone``: a whole zone's brokers at once, never two zones) and a 5-member ZooKeeper
ensemble over three zones (quorum). Every pod takes the same simulated time to stop,
start and become Ready (no jitter). The per-pod restart time is measured in the same run,
on the roll itself: for every member, from the instant its pod stops being Ready (the
restart deletes it) to the instant its replacement is Ready, as the simulated API server
commits both; the median of those spans is the time one restart costs when nothing else
waits. The bound is the number of restart waves the policy allows times that time, i.e.
what the roll would take if every step between two waves cost nothing:

* zone, three replicas over three zones: one zone per wave -> 3 waves, whatever the
  zones' size;
* quorum of 5: (5-1)//2 = 2 members may be down -> ceil(5/2) = 3 waves.

The baseline is a plain StatefulSet of the same size with ``RollingUpdate`` (one pod at a
time, highest ordinal first) whose template annotation changes, rolled by the simulated
StatefulSet controller in the same run (its time per pod is printed next to it as a check
on the per-pod restart time). Aims: within 1.2x of the bound; Kafka at least 2.5x faster
than the one-at-a-time roll of as many pods. Every figure is printed with the machine's
load average (``os.getloadavg()``): the 2-core machines these run on are often shared,
and a loaded run stretches every step between two waves.

The size of every FlowRun the run created (provision and config-update of each
Application, as stored: JSON of the whole object) is printed per flow at the end.

Each roll's duration is split into phases that add up to it: the operator seeing the
change, the flow's start up to the first member going down, the restarts themselves (the
bound), the time between waves, the end of the flow after the last member is Ready, and
the Application's status settling. Every instant is stamped as the simulated API server
commits it (pods, FlowRun, Application status), in this process, so no polling of the
benchmark blurs the figures. For a zone roll (one wave per member cluster) the time
between waves is split again into parts that add up to it: what each wave's slowest pod
took beyond the median (the simulated kubelets and controllers of one cluster bring ten
pods back one after another, under the machine's load), the members of one wave being
deleted at different instants (the operator's gates and restarts), and the gaps from a
wave's last member Ready to the next wave's first deletion (the operator between steps).
The sum over waves of each wave's slowest restart is printed too, as a second bound: the
roll had the operator deleted a whole wave at one instant and started the next at once.

The simulated API servers stand in for real ones, which are not Python processes: before
each roll (outside the measured time) this process collects its garbage and freezes what
is left out of collections until the roll ends, or a full collection over the whole
simulated world (0.25-0.4 s here) stalls every cluster at once mid-roll and is counted as
operator time.

Run: .venv/bin/python bench/operator_rolling.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from lightkube.resources.apps_v1 import StatefulSet
from lightkube.types import PatchType

sys.path.insert(0, str(Path(__file__).parent))

from milkyway.cli.demo import is_ready
from milkyway.kube.labels import APPLICATION as APP_LABEL
from milkyway.kube.labels import COMPONENT as COMPONENT_LABEL
from milkyway.kube.resources import APPLICATION, FLOWRUN
from milkyway.operator.planner import RESTART_ANNOTATION
from milkyway.sim import monitor
from milkyway.sim.controllers.config import ControlPlaneConfig, StageDelays
from operator_common import MANAGEMENT, Bench, application, bench_world, steady_nodes

NAMESPACE = "rolling"
AIM = 1.2
SPEEDUP_AIM = 2.5
KAFKA_ZONE_SIZES = (3, 10)
FLOW_RUNS = "milkyway.ebay.com/v1/flowruns"
APPLICATIONS = "milkyway.ebay.com/v1/applications"
DELAYS = StageDelays(creating=1.0, ready=1.0, terminating=0.5, jitter=0.0)


class Timeline:
    """What one roll of one component went through, stamped as the simulated API servers
    commit it (in this process, so no polling delay blurs the figures): its members'
    readiness, its FlowRun, its Application's status."""

    def __init__(self, app: str, component: str, after: float) -> None:
        self.app = app
        self.component = component
        self.after = after
        self.down_since: dict[str, float] = {}
        self.spans: list[float] = []
        self.restarts: list[tuple[str, float, float]] = []
        """Every member's restart: its cluster, when its pod stopped being Ready, and when
        its replacement was Ready."""
        self.ready: set[str] = set()
        self.first_down: float | None = None
        self.last_ready: float | None = None
        self.flow: str | None = None
        self.flow_created: float | None = None
        self.flow_done: float | None = None
        self.settled: float | None = None
        self.done = asyncio.Event()

    def member(self, t: monitor.Transition) -> None:
        if t.labels.get(APP_LABEL) != self.app or t.labels.get(COMPONENT_LABEL) != self.component:
            return
        key = f"{t.cluster}/{t.name}"
        now = time.monotonic()
        if t.ready:
            if key in self.down_since:
                since = self.down_since.pop(key)
                self.spans.append(now - since)
                self.restarts.append((t.cluster, since, now))
                self.last_ready = now
            self.ready.add(key)
        elif key in self.ready:
            self.ready.discard(key)
            self.down_since[key] = now
            if self.first_down is None and now >= self.after:
                self.first_down = now

    def flow_run(self, event: Any) -> None:
        labels = event.object["metadata"].get("labels") or {}
        if labels.get(APP_LABEL) != self.app or labels.get(COMPONENT_LABEL) != self.component:
            return
        now = time.monotonic()
        name = event.object["metadata"]["name"]
        phase = (event.object.get("status") or {}).get("phase")
        if self.flow is None and event.type == "ADDED" and now >= self.after and not phase:
            self.flow, self.flow_created = name, now
        if name == self.flow and self.flow_done is None and phase == "Succeeded":
            self.flow_done = now

    def application(self, event: Any) -> None:
        obj = event.object
        if obj["metadata"]["name"] != self.app or self.flow_created is None:
            return
        if self.settled is None and is_ready(obj) and not obj["status"].get("currentFlow"):
            self.settled = time.monotonic()
            self.done.set()


@dataclass
class Figures:
    took: float
    member_down: float
    waves: int
    phases: dict[str, float]
    slowest_pods: float | None = None
    """Zone rolls: the sum over waves of the wave's slowest member restart (its own
    deletion to its own Ready), i.e. the bound had the operator deleted every member of a
    wave at the same instant and started the next wave at once."""
    between: dict[str, float] | None = None
    """Zone rolls: the "between waves" phase split into what the pods took beyond the
    median, members of one wave deleted at different instants, and the gaps between waves."""

    @property
    def bound(self) -> float:
        return self.waves * self.member_down

    @property
    def ratio(self) -> float:
        return self.took / self.bound


def zone_waves(t: Timeline, member_down: float) -> tuple[float, dict[str, float]]:
    """A zone roll's waves (one per member cluster: one zone each), as
    :attr:`Figures.slowest_pods` and :attr:`Figures.between`."""
    waves: dict[str, list[tuple[float, float]]] = {}
    for cluster, down, ready in t.restarts:
        waves.setdefault(cluster, []).append((down, ready))
    ordered = sorted(waves.values(), key=lambda spans: min(d for d, _ in spans))
    slowest = [max(r - d for d, r in spans) for spans in ordered]
    lengths = [max(r for _, r in spans) - min(d for d, _ in spans) for spans in ordered]
    gaps = [
        min(d for d, _ in later) - max(r for _, r in earlier)
        for earlier, later in itertools.pairwise(ordered)
    ]
    return sum(slowest), {
        "pods slower than the median (simulator)": sum(s - member_down for s in slowest),
        "a wave's members deleted at different instants": sum(
            length - s for length, s in zip(lengths, slowest, strict=True)
        ),
        "last Ready of a wave -> first deletion of the next": sum(gaps),
    }


def figures(t: Timeline, waves: int, by_zone: bool = False) -> Figures:
    """The roll's duration split into phases that add up to it exactly (and, for a zone
    roll, the time between waves split into parts that add up to it)."""
    marks = (t.flow_created, t.first_down, t.last_ready, t.flow_done, t.settled)
    if any(m is None for m in marks) or not t.spans:
        raise RuntimeError(f"{t.app}/{t.component}: the roll left no complete timeline: {marks}")
    created, first_down, last_ready, flow_done, settled = marks  # type: ignore[misc]
    member_down = statistics.median(t.spans)
    rolling = last_ready - first_down
    phases = {
        "change seen -> FlowRun created": created - t.after,
        "FlowRun created -> first member down": first_down - created,
        "restarts (waves x member down)": waves * member_down,
        "between waves": rolling - waves * member_down,
        "last member Ready -> FlowRun Succeeded": flow_done - last_ready,
        "FlowRun Succeeded -> Application settled": settled - flow_done,
    }
    result = Figures(settled - t.after, member_down, waves, phases)
    if by_zone:
        result.slowest_pods, result.between = zone_waves(t, member_down)
    return result


async def roll(
    bench: Bench,
    app: str,
    component: str,
    index: int,
    waves: int,
    heap_mb: int,
    by_zone: bool = False,
) -> Figures:
    gc.collect()
    gc.freeze()
    await asyncio.sleep(0.5)
    timeline = Timeline(app, component, time.monotonic())
    management = bench.sim[MANAGEMENT].api
    unsubscribe = [
        management.subscribe(FLOW_RUNS, timeline.flow_run, namespace=NAMESPACE),
        management.subscribe(APPLICATIONS, timeline.application, namespace=NAMESPACE),
        *(monitor.subscribe(bench.sim[m.name], timeline.member) for m in bench.members),
    ]
    params = {"heapMb": heap_mb}
    patch = [{"op": "add", "path": f"/spec/components/{index}/params", "value": params}]
    try:
        timeline.after = time.monotonic()
        await bench.client.patch(
            APPLICATION, app, patch, namespace=NAMESPACE, patch_type=PatchType.JSON
        )
        await asyncio.wait_for(timeline.done.wait(), 300)
    finally:
        for stop in unsubscribe:
            stop()
        # Frozen objects are never collected: hand them back, or what dies later leaks.
        gc.unfreeze()
    result = figures(timeline, waves, by_zone)
    print(
        f"{app}/{component}: {len(timeline.spans)} restarts in {result.took:5.1f}s; member down "
        f"{result.member_down:.2f}s (median); policy bound {waves} waves = {result.bound:5.1f}s; "
        f"ratio {result.ratio:.2f} ({'meets' if result.ratio <= AIM else 'misses'} the "
        f"{AIM}x aim); {load()}",
        flush=True,
    )
    for phase, seconds in result.phases.items():
        print(f"    {phase:<42} {seconds:6.2f}s", flush=True)
    if result.between is not None and result.slowest_pods is not None:
        for part, seconds in result.between.items():
            print(f"      {part:<50} {seconds:6.2f}s", flush=True)
        print(
            f"    each wave's slowest pod: {result.slowest_pods:5.1f}s "
            f"(ratio {result.took / result.slowest_pods:.2f})",
            flush=True,
        )
    return result


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


def load() -> str:
    """The machine's load average (1, 5, 15 minutes), to discount a loaded run."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def summary(label: str, runs: list[Figures]) -> None:
    ratios = [r.ratio for r in runs]
    worst = max(runs, key=lambda r: r.ratio)
    print(
        f"{label}: {len(runs)} rolls, {min(r.took for r in runs):.1f}-"
        f"{max(r.took for r in runs):.1f}s, ratio {min(ratios):.2f}-{max(ratios):.2f} "
        f"(median {statistics.median(ratios):.2f}); "
        f"{sum(r <= AIM for r in ratios)}/{len(runs)} within {AIM}x",
        flush=True,
    )
    mean = {k: statistics.mean(r.phases[k] for r in runs) for k in worst.phases}
    for phase, seconds in mean.items():
        print(f"    {phase:<42} mean {seconds:6.2f}s  worst roll {worst.phases[phase]:6.2f}s")
    if worst.between is not None:
        for part in worst.between:
            seconds = statistics.mean((r.between or {})[part] for r in runs)
            print(f"      {part:<50} mean {seconds:6.2f}s  worst roll {worst.between[part]:6.2f}s")


def speedup(label: str, runs: list[Figures], baseline_seconds: float, aim: bool) -> None:
    """The median roll against the one-at-a-time StatefulSet roll and the policy bound,
    and the slowest roll against both (a median can hide a roll that misses)."""
    took = statistics.median(r.took for r in runs)
    slowest = max(runs, key=lambda r: r.took)
    factor = baseline_seconds / took
    ratio = statistics.median(r.ratio for r in runs)
    bound = statistics.median(r.bound for r in runs)
    verdict = f" ({'meets' if factor >= SPEEDUP_AIM else 'misses'} the {SPEEDUP_AIM}x aim)"
    print(
        f"{label}: Milkyway {took:5.1f}s (median of {len(runs)}; slowest {slowest.took:.1f}s) "
        f"vs StatefulSet one at a time {baseline_seconds:5.1f}s: {factor:.2f}x faster"
        f"{verdict if aim else ''} (slowest {baseline_seconds / slowest.took:.2f}x); policy "
        f"bound {bound:4.1f}s: {ratio:.2f}x it ({'meets' if ratio <= AIM else 'misses'} the "
        f"{AIM}x aim; slowest {slowest.ratio:.2f}x); {load()}",
        flush=True,
    )


async def settle(bench: Bench, app: str, patch: Any, what: str) -> None:
    """Apply ``patch`` (a JSON patch; a merge patch if a dict) to ``app`` and wait until
    a new flow ran and the Application is Ready again with no flow running."""
    selector = {APP_LABEL: app}

    async def runs() -> set[str]:
        listing = bench.client.list(FLOWRUN, namespace=NAMESPACE, labels=selector)
        return {run.metadata.name async for run in listing}

    before = await runs()
    start = time.monotonic()
    kind = PatchType.MERGE if isinstance(patch, dict) else PatchType.JSON
    await bench.client.patch(APPLICATION, app, patch, namespace=NAMESPACE, patch_type=kind)
    while time.monotonic() - start < 300:
        await asyncio.sleep(0.5)
        obj = (await bench.client.get(APPLICATION, app, namespace=NAMESPACE)).to_dict()
        if await runs() - before and is_ready(obj) and not obj["status"].get("currentFlow"):
            print(f"{app}: {what} in {time.monotonic() - start:5.1f}s", flush=True)
            return
    raise RuntimeError(f"{app}: {what} did not settle within 300s")


async def other_flows(bench: Bench, app: str) -> None:
    """Run the other rolling flows once on ``app`` (ZooKeeper at index 0, Kafka at 1 with
    its first zone at z0), so their FlowRuns are there to be measured."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    zone = "/spec/components/1/regions/0/zones/0/size"
    await asyncio.sleep(1.1)
    for what, patch in (
        (
            "ZooKeeper upgraded",
            [{"op": "replace", "path": "/spec/components/0/version", "value": "3.9.3"}],
        ),
        (
            "Kafka restarted on request",
            {"metadata": {"annotations": {RESTART_ANNOTATION: f"kafka@{stamp}"}}},
        ),
        ("Kafka scaled out", [{"op": "replace", "path": zone, "value": KAFKA_ZONE_SIZES[0] + 1}]),
        ("Kafka scaled in", [{"op": "replace", "path": zone, "value": KAFKA_ZONE_SIZES[0]}]),
    ):
        await settle(bench, app, patch, what)


async def flow_run_sizes(bench: Bench) -> None:
    """Bytes of JSON of every FlowRun in the namespace, largest per flow."""
    sizes: dict[str, list[tuple[int, int]]] = {}
    async for run in bench.client.list(FLOWRUN, namespace=NAMESPACE):
        data = run.to_dict()
        whole = len(orjson.dumps(data))
        status = len(orjson.dumps(data.get("status") or {}))
        sizes.setdefault(data["spec"]["flow"], []).append((whole, status))
    print("FlowRun sizes (JSON bytes; largest run per flow):", flush=True)
    for flow, found in sorted(sizes.items()):
        whole, status = max(found)
        print(
            f"    {flow:<40} {len(found):3d} runs  object {whole / 1024:7.1f} KiB  "
            f"status {status / 1024:7.1f} KiB",
            flush=True,
        )


async def main(rounds: int) -> None:
    logging.getLogger("milkyway.sim").setLevel(logging.CRITICAL)
    config = steady_nodes(ControlPlaneConfig.fast(delays=DELAYS))
    with tempfile.TemporaryDirectory(prefix="mw-rolling-") as tmp:
        async with bench_world(Path(tmp), 3, config=config, nodes=3) as bench:
            z = [m.zone for m in bench.members]
            kafkas = [
                application(
                    f"kafka-{size}",
                    NAMESPACE,
                    [
                        ("zookeeper", "3.8.4", {z[0]: 1, z[1]: 1, z[2]: 1}),
                        ("kafka", "3.9.1", {z[0]: size, z[1]: size, z[2]: size}),
                    ],
                    bench.region_of,
                )
                for size in KAFKA_ZONE_SIZES
            ]
            ensemble = application(
                "ensemble",
                NAMESPACE,
                [("zookeeper", "3.8.4", {z[0]: 2, z[1]: 2, z[2]: 1})],
                bench.region_of,
            )
            await bench.create([*kafkas, ensemble])
            ready = await bench.wait_ready(NAMESPACE, len(kafkas) + 1, limit=600)
            print(
                f"provisioned {len(kafkas) + 1} Applications in {ready:.1f}s; {load()}",
                flush=True,
            )
            kafka: dict[int, list[Figures]] = {size: [] for size in KAFKA_ZONE_SIZES}
            quorum: list[Figures] = []
            for n in range(rounds):
                heap = 1536 + 64 * n
                for size in KAFKA_ZONE_SIZES:
                    kafka[size].append(
                        await roll(bench, f"kafka-{size}", "kafka", 1, 3, heap, by_zone=True)
                    )
                quorum.append(await roll(bench, "ensemble", "zookeeper", 0, waves=3, heap_mb=heap))
            for size in KAFKA_ZONE_SIZES:
                summary(f"Kafka 3 zones x {size} (zone)", kafka[size])
            summary("ZooKeeper 5 over 3 zones (quorum)", quorum)
            baselines = {}
            for replicas in (*(3 * size for size in KAFKA_ZONE_SIZES), 5):
                baselines[replicas] = await baseline(bench, replicas)
                print(
                    f"StatefulSet RollingUpdate of {replicas} pods (one at a time): "
                    f"{baselines[replicas]:5.1f}s ({baselines[replicas] / replicas:.2f}s per "
                    f"pod); {load()}",
                    flush=True,
                )
            for size in KAFKA_ZONE_SIZES:
                speedup(f"Kafka 3 zones x {size}", kafka[size], baselines[3 * size], True)
            speedup("ZooKeeper 5 over 3 zones", quorum, baselines[5], False)
            await other_flows(bench, f"kafka-{KAFKA_ZONE_SIZES[0]}")
            await flow_run_sizes(bench)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=3, help="rolls of each component in one run (default 3)"
    )
    asyncio.run(main(parser.parse_args().rounds))

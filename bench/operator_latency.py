"""Reaction latency of the operator: from an Application change to its flow starting.

For each scale (10, 100, 1,000 Applications by default; each a one-member ZooKeeper, spread
over two member clusters) the operator runs in its own process until every Application is
Ready; then, ``--runs`` times in a row in that same world, ``--samples`` Applications are
changed one at a time (a JSON patch of a parameter in the spec) and the time until the
config-update FlowRun for each appears (seen by a watch on FlowRuns) is recorded; each run
takes other Applications. Prints p50/p99 per run with the machine's load; the aim is p99
< 200 ms at 1,000 in every run.

Every sample explains itself: the operator's metrics endpoint is scraped before and after
it, and for each sample over ``--explain-over`` ms (and the slowest three of every run) the
operator's event-loop lag, garbage-collection pauses and Kubernetes API requests during it
are printed, with the longest event-loop lag of this process (where the simulated API
servers run: their answers and watch events wait on it).

By default the simulator's heap is collected and frozen before each run, outside its
measured time (``--no-freeze-simulator`` to keep it collected): its full collections stop
every simulated API server for up to a second at 1,000 Applications, which is the
simulator's cost, not the operator's (each sample prints the simulator's collections
during it either way).

Run: .venv/bin/python bench/operator_latency.py [--scales 10,100,1000] [--runs 5]
     [--samples 200] [--explain-over 100] [--log-dir DIR] [--no-freeze-simulator]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lightkube.types import PatchType

sys.path.insert(0, str(Path(__file__).parent))

from milkyway.kube.labels import APPLICATION as APP_LABEL
from milkyway.kube.resources import APPLICATION, FLOWRUN
from milkyway.operator.reconciler import OPERATION_LABEL
from milkyway.sim.controllers.config import ControlPlaneConfig
from operator_common import (
    Bench,
    application,
    bench_world,
    percentile,
    steady_nodes,
)
from operator_metrics import METRICS_ARGS, OperatorMetrics, Snapshot, explain, metrics_url

NAMESPACE = "latency"


@dataclass
class Sample:
    seconds: float
    name: str
    wall: float
    before: Snapshot
    after: Snapshot
    bench_lag: float
    """The longest lag of this process's event loop while the sample ran."""
    bench_gc: float
    """Seconds this process (the simulated API servers) spent in garbage collection."""

    def line(self) -> str:
        at = (
            time.strftime("%H:%M:%S", time.localtime(self.wall))
            + f".{int(self.wall % 1 * 1000):03d}"
        )
        return (
            f"{self.name} {self.seconds * 1000:.0f} ms at {at}: "
            f"{explain(self.before, self.after)}; "
            f"simulator: loop lag max {self.bench_lag * 1000:.0f} ms, "
            f"GC {self.bench_gc * 1000:.0f} ms"
        )


class Lag:
    """This process's event-loop lag over time (the simulated API servers share it)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []

    async def run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            now = time.monotonic()
            self.samples.append((now, now - before - 0.01))

    def worst(self, start: float, end: float) -> float:
        return max(
            (lag for at, lag in reversed(self.samples) if start <= at <= end + 0.01), default=0.0
        )


class FlowRunWatch:
    """When each Application's config-update FlowRun appeared (its first ADDED)."""

    def __init__(self, bench: Bench) -> None:
        self._bench = bench
        self.seen: dict[str, float] = {}
        self.arrived = asyncio.Event()

    async def run(self) -> None:
        # Only config-update runs: a watch of every FlowRun would first replay the 1,000
        # provisioning runs (about 200 KB each), and the first samples would wait behind
        # that replay in this process.
        updates = {OPERATION_LABEL: "config-update"}
        async for event, run in self._bench.client.watch(
            FLOWRUN, namespace=NAMESPACE, labels=updates
        ):
            app = (run.metadata.labels or {}).get(APP_LABEL)
            if event == "ADDED" and app and app not in self.seen:
                self.seen[app] = time.monotonic()
                self.arrived.set()


def freeze_heap() -> None:
    """Collect, then freeze what is left out of the collections, before a run (outside
    its measured time). The simulated API servers hold every object of every cluster in
    this process, and a full collection of that heap stops all of them (and this watch)
    for up to a second: a pause no real API server has. Freezing again before each run
    also takes what the previous run left (FlowRuns, watch events) out of the heap the
    next run's collections walk; cycles that die while frozen stay until the process
    ends, minutes later."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    print(f"{'':>9}simulator heap frozen: {gc.get_freeze_count()} objects", flush=True)


async def measure(
    bench: Bench,
    runs: FlowRunWatch,
    lag: Lag,
    metrics: OperatorMetrics,
    count: int,
    samples: int,
    run: int,
) -> list[Sample]:
    """One run: ``samples`` Applications (a different set in each run) changed in turn."""
    taken: list[Sample] = []
    step = max(1, count // samples)
    for k in range(min(samples, count)):
        name = f"app-{(k * step + run) % count}"
        runs.seen.pop(name, None)
        runs.arrived.clear()
        value = {"tickTime": 3000 + run * 1000 + k}
        patch = [{"op": "add", "path": "/spec/components/0/params", "value": value}]
        before = await metrics.scrape()
        collected = gc_seconds(bench)
        start = time.monotonic()
        wall = time.time()
        await bench.client.patch(
            APPLICATION, name, patch, namespace=NAMESPACE, patch_type=PatchType.JSON
        )
        deadline = start + 30
        while name not in runs.seen and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runs.arrived.wait(), deadline - time.monotonic())
            runs.arrived.clear()
        if name not in runs.seen:
            print(f"  {name}: no flow within 30 s", flush=True)
            continue
        seen = runs.seen[name]
        after = await metrics.scrape()
        taken.append(
            Sample(
                seen - start,
                name,
                wall,
                before,
                after,
                lag.worst(start, seen),
                gc_seconds(bench) - collected,
            )
        )
        await asyncio.sleep(0.2)
    return taken


def gc_seconds(bench: Bench) -> float:
    return sum(g.seconds for g in bench.gc_pauses.generations.values())


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}/{fifteen:.1f} on {os.cpu_count()} cores"


async def run_scale(
    count: int,
    runs: int,
    samples: int,
    explain_over: float,
    workdir: Path,
    log_dir: Path | None,
    freeze_simulator: bool,
) -> None:
    config = steady_nodes(ControlPlaneConfig.fast())
    keep_log = log_dir / f"operator-latency-{count}.log" if log_dir else None
    async with bench_world(
        workdir, 2, config=config, nodes=2, keep_log=keep_log, operator_args=METRICS_ARGS
    ) as bench:
        zones = [m.zone for m in bench.members]
        apps = [
            application(
                f"app-{i}",
                NAMESPACE,
                [("zookeeper", "3.8.4", {zones[i % len(zones)]: 1})],
                bench.region_of,
            )
            for i in range(count)
        ]
        start = time.monotonic()
        await bench.create(apps)
        ready = await bench.wait_ready(
            NAMESPACE, count, limit=max(120, count * 1.5), report_every=60
        )
        print(
            f"{count:>5} apps: created in {time.monotonic() - start - ready:.1f}s, "
            f"all Ready after {ready:.1f}s more; {load()}",
            flush=True,
        )
        metrics = OperatorMetrics(await metrics_url(bench.log))
        watch = FlowRunWatch(bench)
        lag = Lag()
        tasks = [asyncio.create_task(watch.run()), asyncio.create_task(lag.run())]
        await asyncio.sleep(1.0)
        met = 0
        try:
            for run in range(runs):
                if freeze_simulator:
                    freeze_heap()
                taken = await measure(bench, watch, lag, metrics, count, samples, run)
                latencies = [t.seconds for t in taken]
                p50 = percentile(latencies, 50) * 1000
                p99 = percentile(latencies, 99) * 1000
                met += p99 < 200
                rss = bench.operator_process().memory_info().rss / 2**20
                print(
                    f"{count:>5} apps, run {run + 1}/{runs}: change -> flow start "
                    f"p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  max {max(latencies) * 1000:6.1f} ms "
                    f"({len(taken)} samples; operator RSS {rss:.0f} MiB; "
                    f"{'meets' if p99 < 200 else 'misses'} the 200 ms aim; {load()})",
                    flush=True,
                )
                slowest = sorted(taken, key=lambda t: t.seconds, reverse=True)
                shown = [t for t in slowest if t.seconds * 1000 > explain_over] or slowest[:3]
                for sample in shown[:20]:
                    print(f"{'':>9}{sample.line()}", flush=True)
                if len(shown) > 20:
                    print(f"{'':>9}… and {len(shown) - 20} more over {explain_over:.0f} ms")
                everything = [t.seconds for t in taken]
                quiet = [
                    t.seconds for t in taken if (t.after["gc"] - t.before["gc"]).seconds < 0.01
                ]
                if quiet and len(quiet) < len(everything):
                    print(
                        f"{'':>9}samples without a GC pause over 10 ms: p99 "
                        f"{percentile(quiet, 99) * 1000:.1f} ms ({len(quiet)})",
                        flush=True,
                    )
                calm = [t.seconds for t in taken if t.bench_gc < 0.01]
                if calm and len(calm) < len(everything):
                    print(
                        f"{'':>9}samples without a simulator GC pause over 10 ms: p99 "
                        f"{percentile(calm, 99) * 1000:.1f} ms ({len(calm)})",
                        flush=True,
                    )
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await metrics.close()
        print(f"{count:>5} apps: p99 under 200 ms in {met} of {runs} runs", flush=True)


async def main() -> None:
    logging.getLogger("milkyway.sim").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="10,100,1000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument(
        "--explain-over", type=float, default=100.0, help="explain samples slower (ms)"
    )
    parser.add_argument("--log-dir", type=Path, help="keep the operator's log of each scale here")
    parser.add_argument(
        "--freeze-simulator",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the simulator's provisioned heap out of its garbage collections while "
        "measuring (its full collections otherwise stop every simulated API server)",
    )
    args = parser.parse_args()
    for count in (int(s) for s in args.scales.split(",")):
        with tempfile.TemporaryDirectory(prefix="mw-latency-") as tmp:
            await run_scale(
                count,
                args.runs,
                args.samples,
                args.explain_over,
                Path(tmp),
                args.log_dir,
                args.freeze_simulator,
            )


if __name__ == "__main__":
    asyncio.run(main())

"""Reaction latency of the operator: from an Application change to its flow starting.

For each scale (10, 100, 1,000 Applications by default; each a one-member ZooKeeper, spread
over two member clusters) the operator runs in its own process until every Application is
Ready; then, one at a time, a parameter of a sample Application is changed (a JSON patch of
its spec) and the time until the config-update FlowRun for it appears (seen by a watch on
FlowRuns) is recorded. Prints p50/p99 per scale; the aim is p99 < 200 ms at 1,000.

Run: .venv/bin/python bench/operator_latency.py [--scales 10,100,1000] [--samples 40]
     [--log-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
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

NAMESPACE = "latency"


async def measure(
    bench: Bench, count: int, samples: int
) -> tuple[list[tuple[float, str, float]], list[float]]:
    """Change-to-flow latencies (with the wall-clock time of each change and the
    Application, to find a slow one in the operator's log), and the event-loop lag of
    this process (the simulated API servers live here, so their watch delivery shares
    this loop)."""
    seen: dict[str, float] = {}
    arrived = asyncio.Event()

    async def watch() -> None:
        # Only config-update runs: a watch of every FlowRun would first replay the 1,000
        # provisioning runs (about 200 KB each), and the first samples would wait behind
        # that replay in this process.
        updates = {OPERATION_LABEL: "config-update"}
        async for event, run in bench.client.watch(FLOWRUN, namespace=NAMESPACE, labels=updates):
            if event != "ADDED":
                continue
            app = (run.metadata.labels or {}).get(APP_LABEL)
            if app and app not in seen:
                seen[app] = time.monotonic()
                arrived.set()

    lags: list[float] = []

    async def lag() -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - before - 0.01)

    watcher = asyncio.create_task(watch())
    lagger = asyncio.create_task(lag())
    await asyncio.sleep(1.0)
    seen.clear()
    latencies: list[tuple[float, str, float]] = []
    step = max(1, count // samples)
    try:
        for k, index in enumerate(range(0, count, step)):
            if k >= samples:
                break
            name = f"app-{index}"
            seen.pop(name, None)
            arrived.clear()
            patch = [
                {"op": "add", "path": "/spec/components/0/params", "value": {"tickTime": 3000 + k}}
            ]
            start = time.monotonic()
            wall = time.time()
            await bench.client.patch(
                APPLICATION, name, patch, namespace=NAMESPACE, patch_type=PatchType.JSON
            )
            deadline = start + 30
            while name not in seen and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), deadline - time.monotonic())
                arrived.clear()
            if name in seen:
                latencies.append((seen[name] - start, name, wall))
            else:
                print(f"  {name}: no flow within 30 s", flush=True)
            await asyncio.sleep(0.2)
    finally:
        for task in (watcher, lagger):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return latencies, lags


async def run_scale(count: int, samples: int, workdir: Path, log_dir: Path | None) -> None:
    config = steady_nodes(ControlPlaneConfig.fast())
    keep_log = log_dir / f"operator-latency-{count}.log" if log_dir else None
    async with bench_world(workdir, 2, config=config, nodes=2, keep_log=keep_log) as bench:
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
        ready = await bench.wait_ready(NAMESPACE, count, limit=max(120, count * 1.5))
        print(
            f"{count:>5} apps: created in {time.monotonic() - start - ready:.1f}s, "
            f"all Ready after {ready:.1f}s more",
            flush=True,
        )
        samples_taken, lags = await measure(bench, count, samples)
        latencies = [s[0] for s in samples_taken]
        rss = bench.operator_process().memory_info().rss / 2**20
        p50 = percentile(latencies, 50) * 1000
        p99 = percentile(latencies, 99) * 1000
        verdict = "meets" if p99 < 200 else "misses"
        print(
            f"{count:>5} apps: change -> flow start p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
            f"({len(latencies)} samples; operator RSS {rss:.0f} MiB; {verdict} the 200 ms aim)",
            flush=True,
        )
        print(
            f"{'':>5}       simulator event-loop lag meanwhile: p50 "
            f"{percentile(lags, 50) * 1000:.1f} ms  p99 {percentile(lags, 99) * 1000:.1f} ms",
            flush=True,
        )
        slowest = sorted(samples_taken, reverse=True)[:3]
        print(
            f"{'':>5}       slowest: "
            + ", ".join(
                f"{name} {latency * 1000:.0f} ms at "
                f"{time.strftime('%H:%M:%S', time.localtime(wall))}.{int(wall % 1 * 1000):03d}"
                for latency, name, wall in slowest
            ),
            flush=True,
        )


async def main() -> None:
    logging.getLogger("milkyway.sim").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="10,100,1000")
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--log-dir", type=Path, help="keep the operator's log of each scale here")
    args = parser.parse_args()
    for count in (int(s) for s in args.scales.split(",")):
        with tempfile.TemporaryDirectory(prefix="mw-latency-") as tmp:
            await run_scale(count, args.samples, Path(tmp), args.log_dir)


if __name__ == "__main__":
    asyncio.run(main())

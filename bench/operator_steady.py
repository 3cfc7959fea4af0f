"""Operator RSS and CPU while steady: many Ready Applications over many member clusters,
nothing changing (the operator only watches, heartbeats and resyncs).

Each Application is a 3-member ZooKeeper plus a 27-broker Kafka over three zones (30 pods),
spread round-robin over the member clusters; the default scale is the issue's 1,000
Applications (30,000 pods) over 10 clusters. The operator runs in its own process; the
time from creating the Applications to all of them Ready is printed (cold start: the
operator holds nothing before), then its RSS and CPU are sampled for ``--window``
seconds, and last the operator is asked (``--heap-profile``, SIGUSR1) where its memory
is: live objects by type and by cache, whose top entries are printed.

Run: .venv/bin/python bench/operator_steady.py [--apps 1000] [--clusters 10] [--window 60]
     [--log-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from milkyway.sim.controllers.config import ControlPlaneConfig
from operator_common import application, bench_world, steady_nodes

NAMESPACE = "steady"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--limit", type=float, default=3600.0, help="seconds to reach Ready")
    parser.add_argument("--log-dir", type=Path, help="keep the operator's log here")
    args = parser.parse_args()
    logging.getLogger("milkyway.sim").setLevel(logging.CRITICAL)
    config = steady_nodes(ControlPlaneConfig.fast())
    with tempfile.TemporaryDirectory(prefix="mw-steady-") as tmp:
        keep_log = args.log_dir / f"operator-steady-{args.apps}.log" if args.log_dir else None
        heap_report = Path(tmp) / "heap.txt"
        async with bench_world(
            Path(tmp),
            args.clusters,
            config=config,
            nodes=4,
            keep_log=keep_log,
            operator_args=[f"--heap-profile={heap_report}"],
        ) as bench:
            zones = [m.zone for m in bench.members]
            apps = []
            for i in range(args.apps):
                three = [zones[(i + k) % len(zones)] for k in range(3)]
                apps.append(
                    application(
                        f"app-{i}",
                        NAMESPACE,
                        [
                            ("zookeeper", "3.8.4", {z: 1 for z in three}),
                            ("kafka", "3.9.1", {z: 9 for z in three}),
                        ],
                        bench.region_of,
                    )
                )
            start = time.monotonic()
            await bench.create(apps)
            await bench.wait_ready(NAMESPACE, args.apps, limit=args.limit, report_every=60.0)
            pods = args.apps * 30
            print(
                f"{args.apps} Applications ({pods} pods) over {args.clusters} clusters Ready "
                f"in {time.monotonic() - start:.0f}s from a cold start; load average "
                f"{_load()}",
                flush=True,
            )
            proc = bench.operator_process()
            await asyncio.sleep(5)
            cpu0 = proc.cpu_times()
            wall0 = time.monotonic()
            peak = 0
            while time.monotonic() - wall0 < args.window:
                peak = max(peak, proc.memory_info().rss)
                await asyncio.sleep(1.0)
            cpu1 = proc.cpu_times()
            wall = time.monotonic() - wall0
            busy = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
            rss = proc.memory_info().rss
            print(
                f"steady operator: RSS {rss / 2**20:.0f} MiB (peak {peak / 2**20:.0f} MiB, "
                f"{rss / args.apps / 1024:.0f} KiB per Application), CPU "
                f"{100 * busy / wall:.1f}% of one core over {wall:.0f}s "
                f"({busy / wall / args.apps * 1000:.2f} ms CPU/s per Application); "
                f"load average {_load()}",
                flush=True,
            )
            print(await _heap_report(proc.pid, heap_report), flush=True)


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def _heap_report(pid: int, path: Path, within: float = 600.0) -> str:
    """Ask the operator for its heap report and wait for it."""
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(path.exists):
        if time.monotonic() > deadline:
            return f"no heap report from the operator within {within:.0f}s"
        await asyncio.sleep(0.5)
    text = await asyncio.to_thread(path.read_text)
    return "operator heap (after the window):\n" + text


if __name__ == "__main__":
    asyncio.run(main())

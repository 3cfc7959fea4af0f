"""Reaction latency, Milkyway's operator and a minimal kopf operator side by side.

The same simulated clusters and ``--apps`` one-member ZooKeeper Applications (all Ready,
provisioned by Milkyway's operator) serve both. Milkyway's operator is measured first:
a parameter of a sample Application is changed (a JSON patch of its spec) and the time
until its config-update FlowRun appears is recorded, twice: with changes 0.2 s apart
(the flows of earlier changes still run meanwhile) and with each change made once the
flow of the last one finished (as the peer's are: nothing runs its FlowRuns). Then
Milkyway's operator is stopped and ``bench/kopf_peer_operator.py`` runs under ``kopf
run`` in its own process; it creates the same kind of FlowRun on each spec change,
without deciding anything, and the same changes (new values) are measured. Prints
p50/p99 of each and the ratios.

Run: .venv/bin/python bench/operator_peer_kopf.py [--apps 50] [--samples 40]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml
from lightkube.types import PatchType

sys.path.insert(0, str(Path(__file__).parent))

from milkyway.kube.labels import APPLICATION as APP_LABEL
from milkyway.kube.resources import APPLICATION, FLOWRUN
from milkyway.model.flow import TERMINAL_RUN_PHASES
from milkyway.operator.reconciler import OPERATION_LABEL
from milkyway.sim.controllers.config import ControlPlaneConfig
from operator_common import MANAGEMENT, Bench, application, bench_world, percentile, steady_nodes

NAMESPACE = "peer"
KOPF_DIFFBASE = "kopf.zalando.org/last-handled-configuration"


async def measure(
    bench: Bench, count: int, samples: int, base: int, settle: bool = False
) -> list[float]:
    """Seconds from a spec change of a sample Application to its config-update FlowRun.
    ``settle``: before the next change, wait until the flow the last one started has
    finished, so each change meets an operator that is not still carrying out earlier
    ones (the kopf peer starts no work beyond its FlowRun, which nothing runs)."""
    seen: dict[str, float] = {}
    finished: set[str] = set()
    arrived = asyncio.Event()

    async def watch() -> None:
        updates = {OPERATION_LABEL: "config-update"}
        async for event, run in bench.client.watch(FLOWRUN, namespace=NAMESPACE, labels=updates):
            app = (run.metadata.labels or {}).get(APP_LABEL)
            if event == "ADDED" and app and app not in seen:
                seen[app] = time.monotonic()
                arrived.set()
            phase = ((run.to_dict().get("status") or {}).get("phase")) if app else None
            if app in seen and phase in TERMINAL_RUN_PHASES:
                finished.add(app)
                arrived.set()

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(1.0)
    seen.clear()
    latencies: list[float] = []
    step = max(1, count // samples)
    try:
        for k, index in enumerate(range(0, count, step)):
            if k >= samples:
                break
            name = f"app-{index}"
            seen.pop(name, None)
            finished.discard(name)
            arrived.clear()
            value = {"tickTime": base + k}
            patch = [{"op": "add", "path": "/spec/components/0/params", "value": value}]
            start = time.monotonic()
            await bench.client.patch(
                APPLICATION, name, patch, namespace=NAMESPACE, patch_type=PatchType.JSON
            )
            deadline = start + 30
            while name not in seen and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), deadline - time.monotonic())
                arrived.clear()
            if name in seen:
                latencies.append(seen[name] - start)
            else:
                print(f"  {name}: no FlowRun within 30 s", flush=True)
            while settle and name in seen and name not in finished:
                if time.monotonic() > start + 60:
                    print(f"  {name}: its flow did not finish within 60 s", flush=True)
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), 1.0)
                arrived.clear()
            await asyncio.sleep(0.2)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return latencies


def report(who: str, latencies: list[float]) -> tuple[float, float]:
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    print(
        f"{who:>9}: change -> FlowRun p50 {p50:7.1f} ms  p99 {p99:7.1f} ms "
        f"({len(latencies)} samples)",
        flush=True,
    )
    return p50, p99


async def start_kopf(bench: Bench, workdir: Path) -> asyncio.subprocess.Process:
    """kopf reads the kubeconfig's current context: a copy pointing at the management one."""
    config = yaml.safe_load(bench.kubeconfig.read_text())
    config["current-context"] = MANAGEMENT
    kubeconfig = workdir / "kopf-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    out = (workdir / "kopf.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kopf",
        "run",
        "--standalone",
        f"--namespace={NAMESPACE}",
        str(Path(__file__).parent / "kopf_peer_operator.py"),
        stdout=out,
        stderr=out,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"},
    )
    out.close()
    return process


async def kopf_has_seen_all(bench: Bench, count: int, limit: float) -> None:
    """kopf first records what it saw of each object (an annotation): wait for all."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        marked = 0
        async for item in bench.client.list(APPLICATION, namespace=NAMESPACE):
            if KOPF_DIFFBASE in ((item.metadata.annotations or {}) if item.metadata else {}):
                marked += 1
        if marked >= count:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"kopf did not see every Application within {limit:.0f}s")


async def stop(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
    await process.wait()


async def run(count: int, samples: int, workdir: Path) -> None:
    config = steady_nodes(ControlPlaneConfig.fast())
    async with bench_world(workdir, 2, config=config, nodes=2) as bench:
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
        await bench.create(apps)
        ready = await bench.wait_ready(NAMESPACE, count, limit=max(300, count * 5))
        one, five, _ = os.getloadavg()
        print(f"{count} Applications Ready in {ready:.0f}s; load {one:.1f}/{five:.1f}", flush=True)
        busy = report("Milkyway", await measure(bench, count, samples, 3000))
        print(
            f"{'':>9}  (each change 0.2 s after the last one's FlowRun: the earlier changes' "
            "config-update flows still run)",
            flush=True,
        )
        milkyway = report("Milkyway", await measure(bench, count, samples, 4000, settle=True))
        print(
            f"{'':>9}  (each change once the last one's flow finished, as for the peer, "
            f"whose FlowRuns nothing runs; load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
        await stop(bench.operator)
        kopf = await start_kopf(bench, workdir)
        try:
            await kopf_has_seen_all(bench, count, limit=max(120, count * 2))
            peer = report("kopf", await measure(bench, count, samples, 6000))
        finally:
            await stop(kopf)
        one, five, _ = os.getloadavg()
        print(
            f"Milkyway / kopf: p50 {milkyway[0] / peer[0]:.2f}x, p99 {milkyway[1] / peer[1]:.2f}x "
            f"(with earlier flows still running: p50 {busy[0] / peer[0]:.2f}x, "
            f"p99 {busy[1] / peer[1]:.2f}x) "
            f"(Milkyway decides a flow: resolve, render, observe, plan, approval policies, then "
            f"writes the render snapshot before the FlowRun, two writes; the kopf peer only "
            f"creates the FlowRun); load {one:.1f}/{five:.1f} on {os.cpu_count()} cores",
            flush=True,
        )


async def main() -> None:
    logging.getLogger("milkyway.sim").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mw-peer-") as tmp:
        await run(args.apps, args.samples, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())

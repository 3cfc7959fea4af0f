"""Workflow engine figures: transitions per second, CEL cost, Kubernetes store cost, and
the latency from ``submit`` to a run's first task with many finished runs in the namespace.

Run: ``.venv/bin/python bench/flows_engine.py`` (add ``--quick`` for smaller sizes,
``--only scan`` for the latency figures alone).
Prints figures only; nothing here is asserted by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from milkyway.flows import events as ev
from milkyway.flows.core import Machine, RunInfo
from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import Engine, new_run
from milkyway.flows.expr import evaluate
from milkyway.flows.store import MemoryStore
from milkyway.flows.tasks import REGISTRY, TaskContext
from milkyway.model.flow import TERMINAL_RUN_PHASES, FlowSpec

REGISTRY_BENCH = REGISTRY.copy()
STARTED: dict[str, float] = {}
"""perf_counter() at which each run's first task began (the scan benchmark's end mark)."""
HOLD = asyncio.Event()


class _Params(BaseModel):
    n: int = 0


@REGISTRY_BENCH.task("bench.noop")
async def noop(params: _Params, ctx: TaskContext) -> dict[str, Any]:
    return {"n": params.n}


@REGISTRY_BENCH.task("bench.mark")
async def mark(params: _Params, ctx: TaskContext) -> dict[str, Any]:
    STARTED.setdefault(ctx.run_id, time.perf_counter())
    return {}


@REGISTRY_BENCH.task("bench.hold")
async def hold(params: _Params, ctx: TaskContext) -> dict[str, Any]:
    await HOLD.wait()
    return {}


SCAN_FLOWS = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: quick}
spec:
  steps:
    - {name: only, action: bench.mark}
---
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: busy}
spec:
  steps:
    - {name: only, action: bench.hold}
"""


class BaselineEngine(Engine):
    """The engine as it was: every poll lists every run, a new run waits for a scan.

    (Requests on finished runs are ignored here: the benchmark makes none.)
    """

    async def scan(self) -> None:
        now = self.clock()
        for run in await self.store.list():
            driver = self._drivers.get(run.metadata.name)
            if driver is not None and not driver.done():
                continue
            status = run.status
            if status.phase in TERMINAL_RUN_PHASES and not run.spec.requests:
                continue
            if status.owner and status.owner != self.engine_id and status.lease_until > now:
                continue
            self._drive(run)

    async def submit(self, flow: str, params: Any = None, **kw: Any) -> str:
        run = new_run(self.catalog, self.registry, flow, params, **kw)
        stored = await self.store.create(run)
        self._wakeup.set()
        return stored.metadata.name


def _fan_flow(name: str, members: int, parallelism: int, param: str) -> str:
    return f"""
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {{name: {name}}}
spec:
  steps:
    - name: fan
      forEach: [{",".join(str(i) for i in range(members))}]
      action: bench.noop
      params: {{n: "{param}"}}
      strategy: {{parallelism: {parallelism}}}
"""


def bench_core(members: int) -> None:
    """The pure core alone: every member started and completed, no executor, no store."""
    spec = FlowSpec.model_validate(
        {
            "steps": [
                {
                    "name": "fan",
                    "forEach": list(range(members)),
                    "action": "bench.noop",
                    "params": {"n": "${{ item }}"},
                    "strategy": {"parallelism": 50},
                }
            ]
        }
    )
    machine = Machine({"fan@1": spec}, "fan@1", RunInfo("bench", "fan"))
    status = machine.initial({})
    start = time.perf_counter()
    status, commands = machine.apply(status, ev.Start(now=0))
    group_started = time.perf_counter() - start
    transitions = 1
    running = [c for c in commands if isinstance(c, ev.RunTask)]
    while running:
        task = running.pop()
        status, commands = machine.apply(
            status, ev.TaskSucceeded(now=1, path=task.path, attempt=task.attempt, outputs={})
        )
        transitions += 1
        running.extend(c for c in commands if isinstance(c, ev.RunTask))
    elapsed = time.perf_counter() - start
    assert status.phase == "Succeeded"
    print(
        f"core only, {members}-member fan-out: {transitions / elapsed:,.0f} transitions/s; "
        f"group start (plan + {members} member nodes) {group_started * 1e3:.1f} ms; "
        f"{elapsed / members * 1e6:.0f} us scheduling overhead per member"
    )


def bench_cel() -> None:
    variables = {"params": {"n": 3, "zones": ["a", "b"]}, "item": {"name": "zk-0", "zone": "a"}}
    for text in ("item.name", "params.n * 2 + 1", "params.zones.exists(z, z == item.zone)"):
        evaluate(text, variables)
        count = 2000
        start = time.perf_counter()
        for _ in range(count):
            evaluate(text, variables)
        per = (time.perf_counter() - start) / count * 1e6
        path = "field-path fast path" if "." in text and " " not in text else "CEL program"
        print(f"expression {text!r}: {per:.1f} us per evaluation ({path}, compiled once)")


async def bench_memory(members: int, param: str, label: str) -> float:
    store = MemoryStore()
    catalog = Catalog(load_flows(_fan_flow("fan", members, 50, param)))
    engine = Engine(store, catalog, registry=REGISTRY_BENCH, poll_interval=0.5)
    async with engine:
        start = time.perf_counter()
        name = await engine.submit("fan")
        run = await engine.wait(name, 600)
        elapsed = time.perf_counter() - start
    assert run.status.phase == "Succeeded", run.status.message
    rate = engine.transitions / elapsed
    print(
        f"engine + in-memory store, {members} tasks ({label}): {rate:,.0f} transitions/s, "
        f"{store.writes / members:.2f} store writes per task"
    )
    return rate


@contextlib.asynccontextmanager
async def _kube_store() -> AsyncIterator[Any]:
    """A KubeStore on a simulated cluster (same process) with the Flow CRDs installed."""
    from lightkube import AsyncClient, KubeConfig, codecs

    from milkyway.flows.kube_store import KubeStore
    from milkyway.model.crds import all_crds
    from milkyway.sim.clusters import SimulatedClusters

    with tempfile.TemporaryDirectory() as folder:
        async with SimulatedClusters(["mgmt"], kubeconfig_path=Path(folder) / "kc") as sim:
            client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get("mgmt"))
            try:
                for crd in all_crds():
                    if crd["spec"]["names"]["kind"] in ("Flow", "FlowRun"):
                        await client.create(codecs.from_dict(crd))
                yield KubeStore(client)
            finally:
                await client.close()


async def bench_kube(members: int) -> None:
    async with _kube_store() as store:
        catalog = Catalog(load_flows(_fan_flow("fan", members, 10, "${{ item }}")))
        engine = Engine(store, catalog, registry=REGISTRY_BENCH, poll_interval=0.5)
        async with engine:
            start = time.perf_counter()
            name = await engine.submit("fan")
            run = await engine.wait(name, 600)
            elapsed = time.perf_counter() - start
    assert run.status.phase == "Succeeded", run.status.message
    print(
        f"engine + Kubernetes store (simulated API server, same process), {members} tasks: "
        f"{engine.transitions / elapsed:,.0f} transitions/s, "
        f"{store.writes / members:.2f} API writes per task "
        f"({store.writes} writes for {engine.transitions} transitions)"
    )


async def _finished_runs(store: Any, catalog: Catalog, count: int) -> None:
    async def one(i: int) -> None:
        run = new_run(catalog, REGISTRY_BENCH, "quick", name=f"done-{i:05d}")
        stored = await store.create(run)
        status = stored.status.model_copy(
            update={"phase": "Succeeded", "started_at": 1.0, "finished_at": 2.0}
        )
        await store.replace_status(stored.model_copy(update={"status": status}))

    for first in range(0, count, 50):
        await asyncio.gather(*(one(i) for i in range(first, min(first + 50, count))))


async def _latency(engine: Engine, label: str, submissions: int) -> dict[str, float]:
    """Scan time and submit-to-first-task latency of one engine; prints and returns them."""
    start = time.perf_counter()
    await engine.scan()
    first_scan = time.perf_counter() - start
    scans = []
    for _ in range(5):
        start = time.perf_counter()
        await engine.scan()
        scans.append(time.perf_counter() - start)
    latencies = []
    async with engine:
        for _ in range(submissions):
            start = time.perf_counter()
            name = await engine.submit("quick")
            await engine.wait(name, 120, interval=0.01)
            latencies.append(STARTED[name] - start)
    latencies.sort()
    figures = {
        "scan": sum(scans) / len(scans),
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[min(len(latencies) - 1, round(len(latencies) * 0.99))],
    }
    print(
        f"  {label}: first scan {first_scan * 1e3:,.0f} ms, then {figures['scan'] * 1e3:,.1f} ms "
        f"per scan; submit to first task p50 {figures['p50'] * 1e3:,.0f} ms, "
        f"p99 {figures['p99'] * 1e3:,.0f} ms; lost runs {engine.lost_runs}, "
        f"claim conflicts {engine.claim_conflicts}"
    )
    return figures


async def bench_scan(finished: int, active: int, submissions: int) -> None:
    """Submit-to-first-task latency with ``finished`` finished runs and ``active`` live ones
    in the namespace (the operator's engine, poll interval 1 s), before and after."""
    catalog = Catalog(load_flows(SCAN_FLOWS))
    async with _kube_store() as store:
        start = time.perf_counter()
        await _finished_runs(store, catalog, finished)
        print(
            f"scan and submit latency, Kubernetes store, {finished} finished + {active} "
            f"active runs (created in {time.perf_counter() - start:.1f} s):"
        )
        kw: dict[str, Any] = {"registry": REGISTRY_BENCH, "poll_interval": 1.0}
        busy = Engine(store, catalog, engine_id="busy", **kw)
        async with busy:
            for _ in range(active):
                await busy.submit("busy")
            baseline = await _latency(
                BaselineEngine(store, catalog, engine_id="baseline", **kw),
                "baseline (list every run, start at next scan)",
                submissions,
            )
            current = await _latency(
                Engine(store, catalog, engine_id="current", **kw),
                "current (active runs only, start at submit)",
                submissions,
            )
            HOLD.set()
    print(
        f"  ratio baseline / current: scan {baseline['scan'] / current['scan']:,.0f}x, "
        f"p99 latency {baseline['p99'] / current['p99']:,.0f}x"
    )


async def main(quick: bool, only: str | None) -> None:
    if only == "scan":
        await bench_scan(200 if quick else 1000, 3, 10 if quick else 40)
        return
    size = 200 if quick else 1000
    bench_cel()
    bench_core(size)
    plain = await bench_memory(size, "1", "literal params")
    path = await bench_memory(size, "${{ item }}", "params from item via fast path")
    cel = await bench_memory(size, "${{ item * 2 + 1 }}", "params by a CEL program")
    print(
        f"ratio CEL params / literal params: {cel / plain:.2f}; fast path / literal: "
        f"{path / plain:.2f}"
    )
    await bench_kube(50 if quick else 200)
    await bench_scan(200 if quick else 1000, 3, 10 if quick else 40)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["scan"], help="run one group of figures")
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.only))

"""Workflow engine figures: transitions per second, CEL cost, Kubernetes store cost.

Run: ``.venv/bin/python bench/flows_engine.py`` (add ``--quick`` for smaller sizes).
Prints figures only; nothing here is asserted by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from milkyway.flows import events as ev
from milkyway.flows.core import Machine, RunInfo
from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import Engine
from milkyway.flows.expr import evaluate
from milkyway.flows.store import MemoryStore
from milkyway.flows.tasks import REGISTRY, TaskContext
from milkyway.model.flow import FlowSpec

REGISTRY_BENCH = REGISTRY.copy()


class _Params(BaseModel):
    n: int = 0


@REGISTRY_BENCH.task("bench.noop")
async def noop(params: _Params, ctx: TaskContext) -> dict[str, Any]:
    return {"n": params.n}


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


async def bench_kube(members: int) -> None:
    from lightkube import AsyncClient, KubeConfig, codecs

    from milkyway.flows.kube_store import KubeStore
    from milkyway.model.crds import all_crds
    from milkyway.sim.clusters import SimulatedClusters

    with tempfile.TemporaryDirectory() as folder:
        async with SimulatedClusters(["mgmt"], kubeconfig_path=Path(folder) / "kc") as sim:
            client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get("mgmt"))
            for crd in all_crds():
                if crd["spec"]["names"]["kind"] in ("Flow", "FlowRun"):
                    await client.create(codecs.from_dict(crd))
            store = KubeStore(client)
            catalog = Catalog(load_flows(_fan_flow("fan", members, 10, "${{ item }}")))
            engine = Engine(store, catalog, registry=REGISTRY_BENCH, poll_interval=0.5)
            async with engine:
                start = time.perf_counter()
                name = await engine.submit("fan")
                run = await engine.wait(name, 600)
                elapsed = time.perf_counter() - start
            await client.close()
    assert run.status.phase == "Succeeded", run.status.message
    print(
        f"engine + Kubernetes store (simulated API server, same process), {members} tasks: "
        f"{engine.transitions / elapsed:,.0f} transitions/s, "
        f"{store.writes / members:.2f} API writes per task "
        f"({store.writes} writes for {engine.transitions} transitions)"
    )


async def main(quick: bool) -> None:
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.quick))

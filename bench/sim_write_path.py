"""Status writes of a large custom resource through the simulated API server.

A workflow engine keeps each run's whole state in a custom resource's status and replaces
it on every transition, so the cost of one status write bounds how fast runs progress.
This script builds a CRD shaped like a workflow run (typed fields, a typed map of task
nodes, free-form snapshots) and a status of about 70 KB, then replaces that status in a
loop, with one watcher attached:

* in process, through ``ClusterAPI.update(..., subresource="status")``;
* over HTTPS, through lightkube's ``replace(..., subresource="status")``.

It prints writes/s and a per-phase breakdown of wall time (parse, prune/default/validate,
managed fields, copy, store, watch fan-out, encode), measured by wrapping those steps
with timers in a second pass.

Run: ``.venv/bin/python bench/sim_write_path.py [--writes 200] [--size-kb 70]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.clusters import SimulatedClusters

GROUP = "bench.example.com"

# Status writes/s of a 70 KB status before the write path was made fast (commit 59f3f89,
# same shared 2-core machine, median of three runs); docs/simulator.md lists both.
BASELINE_IN_PROCESS = 14
_CYCLE = 20
BASELINE_HTTPS = 12

_NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "kind": {"type": "string", "enum": ["task", "group", "flow", "approval"]},
        "phase": {
            "type": "string",
            "default": "Pending",
            "enum": ["Pending", "Running", "Succeeded", "Failed", "Skipped"],
        },
        "attempt": {"type": "integer", "default": 0, "minimum": 0},
        "startedAt": {"type": "number", "nullable": True},
        "finishedAt": {"type": "number", "nullable": True},
        "message": {"type": "string", "default": ""},
        "children": {"type": "array", "items": {"type": "string"}},
        "outputs": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "history": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "at": {"type": "number"},
                    "event": {"type": "string"},
                    "detail": {"type": "string", "default": ""},
                },
            },
        },
    },
}

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"runs.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "runs", "singular": "run", "kind": "Run", "listKind": "RunList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "flow": {"type": "string"},
                                    "params": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "phase": {"type": "string", "default": "Pending"},
                                    "progress": {"type": "string", "default": ""},
                                    "seq": {"type": "integer", "default": 0},
                                    "now": {"type": "number", "default": 0.0},
                                    "snapshot": {"x-kubernetes-preserve-unknown-fields": True},
                                    "nodes": {
                                        "type": "object",
                                        "additionalProperties": _NODE_SCHEMA,
                                    },
                                    "holds": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


def make_status(size_kb: int, seq: int) -> dict[str, Any]:
    """A run status of about ``size_kb`` KB: one node per task, each with a short history."""
    nodes: dict[str, Any] = {}
    status: dict[str, Any] = {
        "phase": "Running",
        "progress": "",
        "seq": seq,
        "now": float(seq),
        "snapshot": {
            "fan@1": {
                "steps": [
                    {"name": "fan", "forEach": list(range(50)), "action": "bench.noop"},
                    {"name": "after", "action": "bench.noop", "params": {"n": "${{ 1 }}"}},
                ]
            }
        },
        "nodes": nodes,
        "holds": [],
    }
    index = 0
    while len(orjson.dumps(status)) < size_kb * 1024:
        done = index < seq
        nodes[f"fan/{index}"] = {
            "path": f"fan/{index}",
            "kind": "task",
            "phase": "Succeeded" if done else "Pending",
            "attempt": 1 if done else 0,
            "startedAt": float(index) if done else None,
            "finishedAt": float(index) + 0.5 if done else None,
            "message": "",
            "children": [],
            "outputs": {"n": index, "result": {"ok": done, "items": [index, index + 1]}},
            "history": [
                {"at": float(index), "event": "Started", "detail": f"attempt 1 of task {index}"},
                {"at": float(index) + 0.5, "event": "Succeeded", "detail": ""},
            ],
        }
        index += 1
    status["progress"] = f"{min(seq, index)}/{index}"
    return status


def _statuses(size_kb: int) -> list[dict[str, Any]]:
    """A cycle of statuses, each differing from the one before; a fixed number of them, so
    the heap (and with it the cost of garbage collection) does not grow with ``--writes``."""
    return [make_status(size_kb, seq) for seq in range(_CYCLE)]


def run_object(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Run",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"flow": "fan", "params": {"members": 200}},
    }


class PhaseTimer:
    """Wall time spent in a few functions of the write path, patched with timers.

    Each phase wraps the outermost call of its functions only, so a phase's figure does
    not count its own recursion. Garbage collection is charged to whichever phase
    allocates when it runs, mostly the copies.
    """

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._undo: list[Callable[[], None]] = []

    def wrap(self, phase: str, owner: Any, name: str) -> None:
        original = getattr(owner, name)
        depth = 0

        def timed(*args: Any, **kwargs: Any) -> Any:
            nonlocal depth
            if depth:
                return original(*args, **kwargs)
            depth += 1
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                depth -= 1
                self.totals[phase] = self.totals.get(phase, 0.0) + time.perf_counter() - start

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def close(self) -> None:
        for undo in reversed(self._undo):
            undo()

    def report(self, writes: int, total: float) -> str:
        parts = [
            f"{phase} {seconds / writes * 1e3:.2f} ms" for phase, seconds in self.totals.items()
        ]
        return f"{total / writes * 1e3:.2f} ms in all, of which " + "; ".join(parts)


def phase_timer(cluster: ClusterAPI) -> PhaseTimer:
    from milkyway.sim.apiserver import api, server, store

    timer = PhaseTimer()
    timer.wrap("copy", api, "deep_copy")
    timer.wrap("copy", cluster, "_out")
    timer.wrap("parse", server.ApiServer, "_body")
    timer.wrap("prune/default/validate", api.ClusterAPI, "_default_and_validate")
    timer.wrap("managed fields", api.ClusterAPI, "_record")
    timer.wrap("copy", api, "deep_copy")
    timer.wrap("store", store.Store, "commit")
    timer.wrap("watch fan-out", store.Watcher, "push")
    timer.wrap("encode", server, "_dumps")
    return timer


def timed(cluster: ClusterAPI, fn: Callable[[int], None], writes: int) -> tuple[float, str]:
    """Writes/s of ``fn`` over ``writes`` calls, then a second pass timed per phase."""
    fn(0)
    start = time.perf_counter()
    for seq in range(1, writes + 1):
        fn(seq)
    rate = writes / (time.perf_counter() - start)
    timer = phase_timer(cluster)
    start = time.perf_counter()
    try:
        for seq in range(1, writes + 1):
            fn(seq)
    finally:
        timer.close()
    return rate, timer.report(writes, time.perf_counter() - start)


async def bench_in_process(api: ClusterAPI, size_kb: int, writes: int) -> None:
    api.create(CRD)
    api.create(run_object("inproc"))
    statuses = _statuses(size_kb)
    size = len(orjson.dumps(statuses[-1])) / 1024
    watcher = api.watch(f"runs.{GROUP}", namespace="default")
    latest = api.get(f"runs.{GROUP}", "inproc", namespace="default")

    def write(seq: int) -> None:
        nonlocal latest
        latest["status"] = statuses[seq % len(statuses)]
        latest = api.update(latest, subresource="status", field_manager="engine")
        watcher.drain()

    rate, breakdown = timed(api, write, writes)
    watcher.close()
    print(
        f"in process, {size:.0f} KB status, 1 watcher: {rate:,.0f} status writes/s "
        f"({rate / BASELINE_IN_PROCESS:.1f}x the {BASELINE_IN_PROCESS} writes/s measured before)"
    )
    print(f"  per write: {breakdown}")


async def bench_https(sim: SimulatedClusters, size_kb: int, writes: int) -> None:
    from lightkube import AsyncClient, KubeConfig
    from lightkube.generic_resource import create_namespaced_resource

    Run = create_namespaced_resource(GROUP, "v1", "Run", "runs")
    client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get("bench"))
    created = await client.create(Run.from_dict(run_object("https")))  # type: ignore[attr-defined]
    statuses = _statuses(size_kb)
    received = 0

    async def watch() -> None:
        nonlocal received
        async for _ in client.watch(Run, namespace="default"):
            received += 1

    watch_task = asyncio.create_task(watch())
    latest = created
    start = 0.0
    for seq in range(writes + 1):
        if seq == 1:
            start = time.perf_counter()
        body = {**run_object("https"), "status": statuses[seq % len(statuses)]}
        body["metadata"]["resourceVersion"] = latest.metadata.resourceVersion
        latest = await client.replace(
            Run.Status.from_dict(body),  # type: ignore[attr-defined]
            "https",
            namespace="default",
            field_manager="engine",
        )
    rate = writes / (time.perf_counter() - start)
    watch_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watch_task
    await client.close()
    print(
        f"over HTTPS (lightkube, same process), {size_kb} KB status, 1 watcher: "
        f"{rate:,.0f} status writes/s ({received} watch events received; "
        f"{rate / BASELINE_HTTPS:.1f}x the {BASELINE_HTTPS} writes/s measured before)"
    )


async def main(size_kb: int, writes: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with SimulatedClusters(["bench"], kubeconfig_path=Path(folder) / "kc") as sim:
            await bench_in_process(sim["bench"].api, size_kb, writes)
            await bench_https(sim, size_kb, writes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--size-kb", type=int, default=70)
    args = parser.parse_args()
    asyncio.run(main(args.size_kb, args.writes))

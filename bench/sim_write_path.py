"""Status writes of a large custom resource through the simulated API server.

A workflow engine keeps each run's whole state in a custom resource's status and replaces
it on every transition, so the cost of one status write bounds how fast runs progress.
This script builds a CRD shaped like a workflow run (typed fields, a typed map of task
nodes, free-form snapshots) and a status of about 70 KB, then replaces that status in a
loop, with one watcher attached:

* in process, through ``ClusterAPI.update(..., subresource="status")``;
* over HTTPS, through lightkube's ``replace(..., subresource="status")``.

It prints writes/s and a per-phase breakdown measured with cProfile (parse,
prune/default/validate, managed fields, copy, store, watch fan-out, encode).

Run: ``.venv/bin/python bench/sim_write_path.py [--writes 200] [--size-kb 70]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.clusters import SimulatedClusters

GROUP = "bench.example.com"

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


def run_object(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Run",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"flow": "fan", "params": {"members": 200}},
    }


_PHASES: dict[str, tuple[str, ...]] = {
    "parse": ("server.py:_body", "duplicate_keys.py"),
    "prune/default/validate": ("api.py:_validate_custom",),
    "managed fields": ("api.py:_record",),
    "copy": ("deep_copy", "deepcopy"),
    "store": ("store.py:commit",),
    "watch fan-out": ("store.py:push",),
    "encode": ("server.py:_json", "server.py:_dumps", "server.py:_encode_event"),
}


def phase_breakdown(profile: cProfile.Profile, writes: int) -> str:
    """Cumulative time per phase and write; phases can nest (copies inside validation)."""
    stats = pstats.Stats(profile)
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    parts = []
    for phase, markers in _PHASES.items():
        total = 0.0
        for (filename, _line, func), (_cc, _nc, _tt, cumulative, callers) in raw.items():
            label = f"{Path(filename).name}:{func}"
            if not any(m in label if ":" in m else m == func for m in markers):
                continue
            # Count only entries from outside the phase, so recursion is not counted twice.
            outside = sum(
                v[3]
                for (cf, _cl, cfn), v in callers.items()
                if not any(m in f"{Path(cf).name}:{cfn}" if ":" in m else m == cfn for m in markers)
            )
            total += outside if callers else cumulative
        parts.append(f"{phase} {total / writes * 1e3:.2f} ms")
    return "; ".join(parts)


def timed(fn: Callable[[int], None], writes: int, profile: bool) -> tuple[float, str]:
    fn(0)
    start = time.perf_counter()
    for seq in range(1, writes + 1):
        fn(seq)
    rate = writes / (time.perf_counter() - start)
    breakdown = ""
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for seq in range(1, writes + 1):
            fn(seq)
        profiler.disable()
        breakdown = phase_breakdown(profiler, writes)
    return rate, breakdown


async def bench_in_process(api: ClusterAPI, size_kb: int, writes: int) -> None:
    api.create(CRD)
    api.create(run_object("inproc"))
    statuses = [make_status(size_kb, seq) for seq in range(writes + 1)]
    size = len(orjson.dumps(statuses[-1])) / 1024
    watcher = api.watch(f"runs.{GROUP}", namespace="default")
    latest = api.get(f"runs.{GROUP}", "inproc", namespace="default")

    def write(seq: int) -> None:
        nonlocal latest
        latest["status"] = statuses[seq]
        latest = api.update(latest, subresource="status", field_manager="engine")
        watcher.drain()

    rate, breakdown = timed(write, writes, profile=True)
    watcher.close()
    print(f"in process, {size:.0f} KB status, 1 watcher: {rate:,.0f} status writes/s")
    print(f"  per write: {breakdown}")


async def bench_https(sim: SimulatedClusters, size_kb: int, writes: int) -> None:
    from lightkube import AsyncClient, KubeConfig
    from lightkube.generic_resource import create_namespaced_resource

    Run = create_namespaced_resource(GROUP, "v1", "Run", "runs")
    client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get("bench"))
    created = await client.create(Run.from_dict(run_object("https")))  # type: ignore[attr-defined]
    statuses = [make_status(size_kb, seq) for seq in range(writes + 1)]
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
        body = {**run_object("https"), "status": statuses[seq]}
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
        f"{rate:,.0f} status writes/s ({received} watch events received)"
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

"""Engines as separate processes against the simulated cluster: SIGKILL and rivalry.

Every task counts its executions in a ConfigMap (not idempotent on purpose), so the
tests see exactly how often each effect happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from pathlib import Path
from typing import Any

import pytest
from lightkube.resources.core_v1 import ConfigMap

from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import new_run
from milkyway.model.flow import TERMINAL_RUN_PHASES, FlowRun

HERE = Path(__file__).parent
TASKS = str(HERE / "crash_tasks.py")
FLOWS = str(HERE / "crash_flows.yaml")
CATALOG_TEXT = (HERE / "crash_flows.yaml").read_text()


async def _effects(client: Any) -> dict[str, int]:
    return {
        cm.metadata.name: int(cm.data["count"])
        async for cm in client.list(ConfigMap, namespace="default")
        if cm.metadata.name.startswith("effect-")
    }


async def _start_engine(
    cluster: Any, engine_id: str, lease: float, log: Path
) -> asyncio.subprocess.Process:
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            *cluster.engine_command(
                "--flows", FLOWS, "--tasks", TASKS, "--id", engine_id, "--lease", str(lease)
            ),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=sink,
        )


async def _stop(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def _wait_run(store: Any, name: str, seconds: float) -> FlowRun:
    for _ in range(int(seconds / 0.05)):
        run = await store.get(name)
        if run.status.phase in TERMINAL_RUN_PHASES:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} not finished after {seconds}s: {run.status.phase}")


def _effect(run: FlowRun, path: str) -> str:
    """The ConfigMap a task counted its executions in (its last attempt's output)."""
    return str(run.status.nodes[path].outputs["effect"])


@pytest.mark.slow
async def test_sigkill_at_20_random_points_then_resume(flow_cluster: Any, tmp_path: Path) -> None:
    log = tmp_path / "engines.log"
    store = flow_cluster.store
    catalog = Catalog(load_flows(CATALOG_TEXT))
    run = new_run(catalog, None, "crash-200", {"members": list(range(198))}, name="crash-1")
    await store.create(run)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    kills = 0
    engine_id = "engine-0"
    while kills < 20:
        if kills % 10 == 9:
            engine_id = f"engine-{kills}"  # a new identity must wait for the lease to expire
        proc = await _start_engine(flow_cluster, engine_id, lease=1.0, log=log)
        try:
            seq = (await store.get("crash-1")).status.seq
            target = seq + rng.randint(1, 8)
            for _ in range(600):
                current = await store.get("crash-1")
                if current.status.seq >= target or proc.returncode is not None:
                    break
                await asyncio.sleep(0.05)
            assert proc.returncode is None, f"engine exited:\n{log.read_text()[-3000:]}"
            assert current.status.phase == "Running", f"seed {seed}: finished before 20 kills"
        finally:
            await _stop(proc)
        kills += 1
    proc = await _start_engine(flow_cluster, "engine-final", lease=1.0, log=log)
    try:
        final = await _wait_run(store, "crash-1", 120)
    finally:
        await _stop(proc)
    assert final.status.phase == "Succeeded", (
        f"seed {seed}: {final.status.message}\n{log.read_text()[-3000:]}"
    )
    effects = await _effects(flow_cluster.client)
    tasks = [p for p, n in final.status.nodes.items() if n.kind == "task"]
    assert len(tasks) == 200
    interrupted_total = 0
    for path in tasks:
        node = final.status.nodes[path]
        interrupted = sum(1 for a in node.attempts if a.phase == "Interrupted")
        interrupted_total += interrupted
        count = effects.get(_effect(final, path), 0)
        assert count >= 1, f"seed {seed}: effect of {path} never happened"
        assert count <= 1 + interrupted, (
            f"seed {seed}: {path} ran {count} times with {interrupted} interrupted attempt(s)"
        )
        assert node.attempts[-1].phase == "Succeeded"
    assert interrupted_total >= 1, "no kill ever interrupted a running task"


async def test_two_engines_never_double_apply(flow_cluster: Any, tmp_path: Path) -> None:
    store = flow_cluster.store
    catalog = Catalog(load_flows(CATALOG_TEXT))
    logs = [tmp_path / f"rival-{i}.log" for i in range(2)]
    engines = [
        await _start_engine(flow_cluster, f"rival-{i}", lease=5, log=logs[i]) for i in range(2)
    ]
    try:
        for _ in range(600):
            if all(log.exists() and "driving flowruns" in log.read_text() for log in logs):
                break
            await asyncio.sleep(0.05)
        # Runs appear while both engines scan, so each may be claimed by either.
        names = []
        for index in range(10):
            run = new_run(catalog, None, "small", name=f"small-{index}")
            await store.create(run)
            names.append(run.metadata.name)
            await asyncio.sleep(random.uniform(0.05, 0.4))
        runs = [await _wait_run(store, name, 90) for name in names]
    finally:
        for proc in engines:
            await _stop(proc)
    text = "\n".join(log.read_text() for log in logs)
    assert all(r.status.phase == "Succeeded" for r in runs), text[-3000:]
    effects = await _effects(flow_cluster.client)
    owners = set()
    for run in runs:
        actors = {a.actor for n in run.status.nodes.values() for a in n.attempts}
        assert len(actors) == 1, f"{run.metadata.name} was advanced by {actors}"
        owners |= actors
        for path, node in run.status.nodes.items():
            if node.kind == "task":
                assert effects[_effect(run, path)] == 1, path
    assert owners <= {"rival-0", "rival-1"}
    lost = text.count("is driven elsewhere")
    print(f"runs per engine: {sorted(owners)}; claims lost to the other engine: {lost}")

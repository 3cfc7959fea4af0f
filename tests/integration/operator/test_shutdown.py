"""Stopping the operator stops everything it started: informers on the management and
member clusters, heartbeats, workers, engines. A task left behind keeps logging against
clusters that are gone and ends in "Task exception was never retrieved"."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SIMULATOR = f"{Path('milkyway') / 'sim'}"


def _operator_tasks(before: set[asyncio.Task[Any]]) -> list[str]:
    """Unfinished tasks started since ``before`` running operator code (the simulated
    clusters' own server tasks are not the operator's)."""
    left = []
    for task in asyncio.all_tasks() - before:
        if task.done() or task is asyncio.current_task():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        if "milkyway" in filename and SIMULATOR not in filename:
            left.append(f"{task.get_name()} ({getattr(code, 'co_qualname', '?')})")
    return sorted(left)


async def _working_operator(world: Any, planner: Any) -> Any:
    operator = world.operator(planner=planner)
    await world.apply_application(EXAMPLES / "stream1.yaml")
    return operator


async def _members_synced(world: Any, operator: Any) -> None:
    async def synced() -> bool:
        session = operator.session
        if session is None or not session.registry.members:
            return False
        return all(
            m.cache is not None and m.cache.synced and m.heartbeat is not None
            for m in session.registry.members.values()
        )

    await world.eventually(synced, within=20, what="member caches synced")


async def test_stop_leaves_no_task_of_the_operator_running(world: Any, double_planner: Any) -> None:
    before = set(asyncio.all_tasks())
    operator = await _working_operator(world, double_planner)
    await operator.start()
    await operator.wait_until_leading(10)
    await _members_synced(world, operator)
    await operator.stop()
    assert not _operator_tasks(before), _operator_tasks(before)


async def test_cancelling_run_forever_leaves_no_task_of_the_operator_running(
    world: Any, double_planner: Any
) -> None:
    before = set(asyncio.all_tasks())
    operator = await _working_operator(world, double_planner)
    running = asyncio.create_task(operator.run_forever())
    await operator.wait_until_leading(10)
    await _members_synced(world, operator)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert not _operator_tasks(before), _operator_tasks(before)


class _StuckEngine:
    """An engine whose stop never returns (a flow step hanging on a dead cluster)."""

    async def stop(self) -> None:
        await asyncio.Event().wait()


async def test_a_stop_cut_short_while_engines_stop_leaves_no_task_running(
    world: Any, double_planner: Any
) -> None:
    before = set(asyncio.all_tasks())
    operator = await _working_operator(world, double_planner)
    await operator.start()
    await operator.wait_until_leading(10)
    await _members_synced(world, operator)
    operator.session.engines["stuck"] = _StuckEngine()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(operator.stop(), 1.0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert not _operator_tasks(before), _operator_tasks(before)

import asyncio
import random
from collections.abc import Hashable

import pytest

from milkyway.operator.resync import ResyncSchedule
from milkyway.operator.workqueue import WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def schedule(period: float = 60.0, jitter: float = 0.1) -> tuple[ResyncSchedule, Clock]:
    clock = Clock()
    return ResyncSchedule(period, jitter=jitter, clock=clock, rng=random.Random(7)), clock


def test_a_key_is_due_one_period_after_its_reconcile_within_the_jitter() -> None:
    resync, clock = schedule()
    resync.reconciled("a")
    clock.now += 59.9
    assert resync.pop_due() == []
    clock.now += 6.2
    assert resync.pop_due() == ["a"]


def test_a_recently_reconciled_key_is_not_resynced() -> None:
    resync, clock = schedule(jitter=0.0)
    resync.reconciled("a")
    resync.reconciled("b")
    clock.now += 50
    resync.reconciled("a")
    clock.now += 10
    assert resync.pop_due() == ["b"]
    clock.now += 49
    assert resync.pop_due() == []
    clock.now += 1
    assert resync.pop_due() == ["a"]


def test_keys_reconciled_in_one_burst_come_due_spread_over_the_jitter() -> None:
    resync, clock = schedule(period=60.0, jitter=0.1)
    for i in range(1000):
        resync.reconciled(i)
    deadlines = sorted(d for i in range(1000) if (d := resync.due_at(i)) is not None)
    assert deadlines[0] >= clock.now + 60.0
    assert deadlines[-1] <= clock.now + 66.0
    per_second: dict[int, int] = {}
    for d in deadlines:
        per_second[int(d - clock.now)] = per_second.get(int(d - clock.now), 0) + 1
    assert len(per_second) == 6
    assert max(per_second.values()) < 250, per_second


def test_untracked_keys_are_spread_over_one_period() -> None:
    resync, clock = schedule(period=60.0)
    resync.track(range(600))
    resync.reconciled(0)
    due = [d for i in range(600) if (d := resync.due_at(i)) is not None]
    assert len(due) == 600
    assert all(clock.now <= d <= clock.now + 66.0 for d in due)
    first_half = sum(1 for d in due if d < clock.now + 30.0)
    assert 200 < first_half < 400


def test_a_due_key_is_rescheduled_and_a_forgotten_one_never_comes_due() -> None:
    resync, clock = schedule(jitter=0.0)
    resync.reconciled("kept")
    resync.reconciled("gone")
    resync.forget("gone")
    clock.now += 60
    assert resync.pop_due() == ["kept"]
    assert resync.due_at("gone") is None
    clock.now += 60
    assert resync.pop_due() == ["kept"]
    assert len(resync) == 1


def test_old_deadlines_do_not_pile_up() -> None:
    resync, clock = schedule()
    for _ in range(10_000):
        resync.reconciled("a")
        clock.now += 0.001
    assert len(resync._heap) <= 4 * len(resync) + 64


@pytest.mark.parametrize(("period", "jitter"), [(0.0, 0.1), (-1.0, 0.1), (60.0, 1.0)])
def test_bad_settings_are_refused_naming_the_value(period: float, jitter: float) -> None:
    with pytest.raises(ValueError, match=str(period if period <= 0 else jitter)):
        ResyncSchedule(period, jitter=jitter)


async def test_run_queues_due_keys_as_background_work() -> None:
    queue = WorkQueue()
    resync = ResyncSchedule(0.05, jitter=0.0)
    keys: list[Hashable] = [("ns", "a"), ("ns", "b")]
    runner = asyncio.create_task(resync.run(queue, lambda: keys))
    try:
        got = {await asyncio.wait_for(queue.get(), 5.0) for _ in range(2)}
        assert got == set(keys)
        queue.add(("ns", "changed"))
        for key in got:
            queue.done(key)
        assert await asyncio.wait_for(queue.get(), 5.0) == ("ns", "changed")
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner

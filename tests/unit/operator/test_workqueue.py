import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.operator.workqueue import ExponentialBackoff, ShutDown, WorkQueue


async def test_a_key_waiting_is_held_once() -> None:
    queue = WorkQueue()
    for _ in range(3):
        queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    assert await queue.get() == "a"
    assert await queue.get() == "b"


async def test_key_added_while_processing_is_handed_out_again_after_done() -> None:
    queue = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    assert len(queue) == 0, "a key being processed must not be handed to a second worker"
    queue.done(key)
    assert await queue.get() == "a"


async def test_add_after_waits_for_the_delay() -> None:
    now = [100.0]
    queue = WorkQueue(clock=lambda: now[0])
    queue.add_after("late", 5.0)
    queue.add("now")
    assert await queue.get() == "now"
    assert len(queue) == 0
    now[0] = 105.0
    assert await asyncio.wait_for(queue.get(), 1.0) == "late"


async def test_delayed_key_wakes_a_waiting_worker() -> None:
    queue = WorkQueue()
    queue.add_after("soon", 0.05)
    assert await asyncio.wait_for(queue.get(), 5.0) == "soon"


def test_backoff_doubles_and_forget_resets() -> None:
    backoff = ExponentialBackoff(base=1.0, cap=5.0)
    assert [backoff.when("k") for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.forget("k")
    assert backoff.when("k") == 1.0


async def test_shutdown_drains_then_raises() -> None:
    queue = WorkQueue()
    queue.add("a")
    queue.shut_down()
    queue.add("ignored")
    assert await queue.get() == "a"
    with pytest.raises(ShutDown):
        await queue.get()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "get", "done"]), st.integers(0, 3))))
def test_never_two_workers_on_one_key_and_nothing_lost(ops: list[tuple[str, int]]) -> None:
    async def run() -> None:
        queue = WorkQueue()
        processing: set[int] = set()
        pending: set[int] = set()
        for op, key in ops:
            if op == "add":
                queue.add(key)
                pending.add(key)
            elif op == "get" and len(queue):
                got = await queue.get()
                assert got not in processing
                processing.add(got)
                pending.discard(got)
            elif op == "done" and key in processing:
                processing.discard(key)
                queue.done(key)
        # Every key added but not yet handed out is still waiting or being processed.
        while len(queue):
            got = await queue.get()
            pending.discard(got)
        assert pending <= processing

    asyncio.run(run())

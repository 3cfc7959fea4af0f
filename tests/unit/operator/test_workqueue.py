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


async def test_a_changed_key_is_served_before_resync_keys_queued_earlier() -> None:
    queue = WorkQueue()
    for i in range(5):
        queue.add_resync(f"resync-{i}")
    queue.add("changed")
    assert await queue.get() == "changed"
    assert [await queue.get() for _ in range(5)] == [f"resync-{i}" for i in range(5)]


async def test_a_resync_key_that_changes_moves_ahead_and_is_served_once() -> None:
    queue = WorkQueue()
    queue.add_resync("a")
    queue.add_resync("b")
    queue.add("b")
    assert queue.waiting("b") == "urgent"
    assert len(queue) == 2
    assert await queue.get() == "b"
    assert await queue.get() == "a"
    assert len(queue) == 0
    queue.shut_down()
    with pytest.raises(ShutDown):
        await queue.get()


async def test_a_resync_of_a_key_being_reconciled_is_dropped_but_a_change_is_kept() -> None:
    queue = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add_resync("a")
    queue.done(key)
    assert queue.waiting("a") is None
    assert len(queue) == 0
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    queue.done(key)
    assert queue.waiting("a") == "urgent"


async def test_a_resync_does_not_demote_a_waiting_change() -> None:
    queue = WorkQueue()
    queue.add("x")
    queue.add("a")
    queue.add_resync("a")
    queue.add_resync("z")
    assert queue.waiting("a") == "urgent"
    assert [await queue.get() for _ in range(3)] == ["x", "a", "z"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "resync", "get", "done"]), st.integers(0, 3)),
        max_size=60,
    )
)
def test_with_two_priorities_no_key_is_lost_doubled_or_served_behind_background(
    ops: list[tuple[str, int]],
) -> None:
    async def run() -> None:
        queue = WorkQueue()
        processing: set[int] = set()
        pending: dict[int, bool] = {}
        """The model: keys asked for and not handed out since, each with its urgency."""
        for op, key in ops:
            if op == "add":
                queue.add(key)
                pending[key] = True
            elif op == "resync":
                queue.add_resync(key)
                if key not in pending and key not in processing:
                    pending[key] = False
            elif op == "get" and len(queue):
                urgent = {k for k, u in pending.items() if u and k not in processing}
                got = await queue.get()
                assert isinstance(got, int)
                assert got not in processing, "a key was handed to two workers"
                assert not urgent or got in urgent, "background served before a change"
                del pending[got]
                processing.add(got)
            elif op == "done" and key in processing:
                processing.discard(key)
                queue.done(key)
            for k in range(4):
                expected = None
                if k in pending and k not in processing:
                    expected = "urgent" if pending[k] else "background"
                assert queue.waiting(k) == expected
        for key in list(processing):
            queue.done(key)
        served: list[int] = []
        while len(queue):
            served.append(await queue.get())
        assert sorted(served) == sorted(pending), "a key was lost or served twice"

    asyncio.run(run())

import gc
import logging
import weakref

import pytest

from milkyway.operator.gc_pauses import GcPauses, sweep


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pauses_are_counted_per_generation_and_long_ones_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    pauses = GcPauses(clock=clock)
    caplog.set_level(logging.INFO, logger="milkyway.operator.gc_pauses")
    for generation, pause in ((0, 0.001), (0, 0.003), (2, 0.4)):
        pauses._callback("start", {"generation": generation})
        clock.now += pause
        pauses._callback("stop", {"generation": generation, "collected": 5})
    young, old = pauses.generations[0], pauses.generations[2]
    assert (young.collections, round(young.seconds, 3), young.longest) == (2, 0.004, 0.003)
    assert (old.collections, old.longest) == (1, 0.4)
    assert [r.getMessage() for r in caplog.records] == [
        "garbage collection of generation 2 paused the operator 400 ms (5 objects collected)"
    ]
    assert "gen2: 1 in 400 ms (longest 400)" in pauses.summary()


def test_install_measures_real_collections_once_and_uninstall_stops() -> None:
    pauses = GcPauses()
    pauses.install()
    pauses.install()
    try:
        gc.collect(0)
        assert pauses.generations[0].collections == 1
    finally:
        pauses.uninstall()
    gc.collect(0)
    assert pauses.generations[0].collections == 1


class Node:
    def __init__(self) -> None:
        self.me = self


def test_with_freeze_after_full_a_full_collection_freezes_its_survivors_only() -> None:
    pauses = GcPauses(freeze_after_full=True)
    gc.unfreeze()
    pauses.install()
    try:
        kept = [{"pod": {"name": str(i)}} for i in range(1000)]
        cycle = Node()
        dead = weakref.ref(cycle)
        del cycle
        gc.collect(1)
        assert gc.get_freeze_count() == 0, "a young collection froze something"
        gc.collect()
        assert gc.get_freeze_count() >= 1000
        assert not any(o is kept[0] for o in gc.get_objects()), "a survivor is not frozen"
        assert dead() is None, "cyclic garbage was frozen instead of collected"
    finally:
        pauses.uninstall()
        gc.unfreeze()


def test_sweep_collects_cycles_that_died_frozen() -> None:
    gc.unfreeze()
    try:
        cycle = Node()
        dead = weakref.ref(cycle)
        gc.collect()
        gc.freeze()
        del cycle
        gc.collect()
        assert dead() is not None, "a frozen cycle is out of reach of collections"
        assert sweep() >= 1
        assert dead() is None
        assert gc.get_freeze_count() > 0, "the survivors of the sweep are frozen again"
    finally:
        gc.unfreeze()


def test_the_operator_metric_counts_real_collections_by_generation() -> None:
    from milkyway.operator.metrics import observe_gc_pause
    from milkyway.telemetry import REGISTRY

    count = "milkyway_gc_pause_seconds_count"
    before = REGISTRY.get_sample_value(count, {"generation": "1"}) or 0.0
    pauses = GcPauses(observe=observe_gc_pause)
    pauses.install()
    try:
        gc.collect(1)
    finally:
        pauses.uninstall()
    assert REGISTRY.get_sample_value(count, {"generation": "1"}) == before + 1

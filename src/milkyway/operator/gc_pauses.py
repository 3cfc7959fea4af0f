"""The cyclic garbage collector at the operator's scale: measure its pauses, keep the
caches out of its full collections.

The operator's heap is mostly its caches (every owned object of every member cluster,
every Application), millions of long-lived objects. CPython's full collection traverses
all of them; it runs once the objects that survived younger collections reach a quarter
of the old ones, which steady churn (a pod rewritten, a FlowRun written at every step)
keeps reaching. Each such pause stops the one event loop — the reaction to a change
included — for as long as the traversal takes, and it grows with the number of
Applications.

:func:`freeze_survivors` moves every object that survived the young collections into
the permanent generation (``gc.freeze``), which collections never traverse; done once
the caches are loaded and then periodically, full collections only look at what was
allocated since. Reference counting still frees frozen objects the moment they are
dropped: the caches hold acyclic JSON data, so replacing an object frees its old
version as before. What freezing costs is cyclic garbage that was alive at a freeze
and dies later (never collected); the young collection before each freeze keeps that
to objects that had already lived through two collections.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

LONG_PAUSE = 0.1
"""Seconds: a collection pausing the event loop longer than this is logged."""


@dataclass
class GenerationStats:
    collections: int = 0
    seconds: float = 0.0
    longest: float = 0.0


@dataclass
class GcPauses:
    """Time spent in each generation's collections, from ``gc.callbacks``."""

    clock: Callable[[], float] = time.perf_counter
    generations: dict[int, GenerationStats] = field(
        default_factory=lambda: {g: GenerationStats() for g in range(3)}
    )
    _started: float | None = None

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self.clock()
            return
        if self._started is None:
            return
        pause = self.clock() - self._started
        self._started = None
        stats = self.generations[info["generation"]]
        stats.collections += 1
        stats.seconds += pause
        stats.longest = max(stats.longest, pause)
        if pause > LONG_PAUSE:
            log.info(
                "garbage collection of generation %d paused the operator %.0f ms "
                "(%d objects collected)",
                info["generation"],
                pause * 1000,
                info.get("collected", 0),
            )

    def summary(self) -> str:
        return ", ".join(
            f"gen{g}: {s.collections} in {s.seconds * 1000:.0f} ms (longest {s.longest * 1000:.0f})"
            for g, s in self.generations.items()
        )


def freeze_survivors() -> int:
    """Collect the young generations, then freeze everything left; returns how many
    objects are frozen in all."""
    gc.collect(1)
    gc.freeze()
    return gc.get_freeze_count()

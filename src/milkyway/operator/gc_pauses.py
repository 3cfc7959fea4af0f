"""The cyclic garbage collector at the operator's scale: measure its pauses, keep the
caches out of its full collections.

The operator's heap is mostly its caches (every owned object of every member cluster,
every Application, every FlowRun), millions of long-lived objects. CPython's full
collection traverses all of them, and it runs whenever the objects that survived younger
collections reach a quarter of the old ones, which the churn of a busy operator (pods
rewritten, FlowRuns written at every step) reaches every second or so. Each pause stops
the one event loop, the reaction to a change included, and it grows with the number of
Applications: at 1,000 of them, 100-270 ms every half second while provisioning.

With ``freeze_after_full``, whatever survives a full collection is moved to the permanent
generation (``gc.freeze``), which collections never traverse: the next full collection
looks only at what was allocated since, so its pause follows the allocation rate, not
the size of the heap. Freezing right after a full collection freezes no garbage, and
reference counting still frees a frozen object the moment it is dropped (the caches
hold acyclic JSON data: replacing an object frees its old version as before). What is
lost is the collection of reference cycles among objects that were alive at a freeze
and die later; :func:`sweep` unfreezes and collects everything, at the cost of one pause
over the whole heap (5.5 s at 1,000 Applications, which had leaked 15,000 objects in 15
minutes of provisioning), so it is meant to run hours apart.
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
    freeze_after_full: bool = False
    observe: Callable[[int, float], None] | None = None
    """Also told every pause (generation, seconds): the operator's metric of them."""
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
        if info["generation"] == 2 and self.freeze_after_full:
            gc.freeze()
        stats = self.generations[info["generation"]]
        stats.collections += 1
        stats.seconds += pause
        stats.longest = max(stats.longest, pause)
        if self.observe is not None:
            self.observe(info["generation"], pause)
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


def sweep() -> int:
    """Unfreeze and collect everything (reference cycles that died frozen included), then
    freeze the survivors; returns how many objects were collected."""
    gc.unfreeze()
    collected = gc.collect()
    gc.freeze()
    return collected

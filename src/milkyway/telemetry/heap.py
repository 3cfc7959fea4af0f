"""Where a process's memory is: its live Python objects summed by type, and by owner.

A long-running process whose RSS grows needs an answer to "what holds the bytes": a
count and size of every live object by type (``dict: 1.2 M objects, 310 MB``), and how
much of it each of its large structures holds (``member cache m3 Pod: 40 MB``). Both are
computed from the live heap with :func:`sys.getsizeof`, without tracing allocations
(``tracemalloc`` doubles the memory and slows every allocation, so it cannot stay on in
a process whose memory is being measured): the report costs nothing until asked for.

Asking costs a walk over every object (seconds and, for the set of objects already
counted, tens of bytes per object), during which the process does nothing else: it is a
debugging facility, not a metric to scrape. In a process that freezes its heap
(``gc.freeze``), the walk unfreezes it to list the objects and freezes everything again,
young objects included.

Sizes are the objects' own (shallow) sizes, each object counted once: what an owner holds
is everything reachable from it through containers (dicts, lists, tuples, sets) and
Milkyway's own objects that an owner listed earlier did not already hold.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_CONTAINERS = (dict, list, tuple, set, frozenset)


@dataclass
class Usage:
    """How many objects, how many bytes."""

    objects: int = 0
    bytes: int = 0


@dataclass
class HeapReport:
    """Live objects by type and by owner, and how long the walk took."""

    by_type: dict[str, Usage] = field(default_factory=dict)
    by_owner: dict[str, Usage] = field(default_factory=dict)
    total: Usage = field(default_factory=Usage)
    seconds: float = 0.0

    def lines(self, top: int = 20) -> list[str]:
        """The report as text: the totals, then the ``top`` types and every owner."""
        out = [
            f"live Python objects: {self.total.objects} objects, {_mib(self.total.bytes)} "
            f"(walked in {self.seconds:.1f}s)",
            "by type:",
        ]
        ranked = sorted(self.by_type.items(), key=lambda item: -item[1].bytes)
        for name, usage in ranked[:top]:
            out.append(f"  {_mib(usage.bytes):>10}  {usage.objects:>10} objects  {name}")
        if self.by_owner:
            out.append("by owner (each object counted once, for the first owner listed):")
            owned = 0
            for name, usage in self.by_owner.items():
                owned += usage.bytes
                out.append(f"  {_mib(usage.bytes):>10}  {usage.objects:>10} objects  {name}")
            rest = self.total.bytes - owned
            out.append(f"  {_mib(rest):>10}  {'':>10}          anything else")
        return out


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _descends(obj: Any) -> bool:
    """Whether an owner holds what ``obj`` refers to: containers (subclasses such as
    lightkube's generic resources included) and Milkyway's own objects, not modules,
    classes, functions or clients shared by everything."""
    if isinstance(obj, _CONTAINERS):
        return True
    kind = type(obj)
    module = getattr(kind, "__module__", "") or ""
    return module.startswith("milkyway.") and not isinstance(obj, type)


def measure(owners: Mapping[str, Any] | None = None) -> HeapReport:
    """Walk the live heap: every object the garbage collector tracks and everything they
    refer to (strings, numbers and other untracked objects included); ``owners``: named
    roots whose reachable objects are summed first, in order."""
    started = time.perf_counter()
    report = HeapReport()
    seen: set[int] = set()
    by_type: dict[type, Usage] = {}

    def count(obj: Any) -> int:
        size = sys.getsizeof(obj, 0)
        usage = by_type.get(type(obj))
        if usage is None:
            usage = by_type[type(obj)] = Usage()
        usage.objects += 1
        usage.bytes += size
        return size

    stack: list[Any] = []
    own = {id(seen), id(by_type), id(stack), id(report)}
    """The walk's own bookkeeping, neither counted nor walked into."""
    seen.update(own)
    for name, root in (owners or {}).items():
        usage = report.by_owner[name] = Usage()
        stack.append(root)
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            usage.objects += 1
            usage.bytes += count(obj)
            if _descends(obj):
                stack.extend(_referents(obj))
    frozen = gc.get_freeze_count() > 0
    if frozen:
        # Frozen objects (see milkyway.operator.gc_pauses) are invisible to get_objects.
        gc.unfreeze()
    tracked = gc.get_objects()
    if frozen:
        gc.freeze()
    own.add(id(tracked))
    seen.add(id(tracked))
    _walk_all(tracked, seen, own, count)
    del tracked
    for kind, usage in by_type.items():
        report.by_type[f"{kind.__module__}.{kind.__qualname__}"] = usage
        report.total.objects += usage.objects
        report.total.bytes += usage.bytes
    report.seconds = time.perf_counter() - started
    return report


def _referents(obj: Any) -> list[Any]:
    """What ``obj`` refers to; a dict's string keys too, which the garbage collector
    skips (strings cannot form cycles) but which take memory all the same."""
    found = gc.get_referents(obj)
    if isinstance(obj, dict):
        found.extend(obj)
    return found


def _walk_all(
    tracked: Iterable[Any], seen: set[int], own: set[int], count: Callable[[Any], int]
) -> None:
    """Count every tracked object and, once each, the untracked ones they refer to
    (except through the walk's ``own`` bookkeeping)."""
    for obj in tracked:
        if id(obj) in own:
            continue
        if id(obj) not in seen:
            seen.add(id(obj))
            count(obj)
        for ref in _referents(obj):
            if gc.is_tracked(ref) or id(ref) in seen:
                continue
            seen.add(id(ref))
            count(ref)
            stack = _referents(ref)
            while stack:
                inner = stack.pop()
                if gc.is_tracked(inner) or id(inner) in seen:
                    continue
                seen.add(id(inner))
                count(inner)
                stack.extend(_referents(inner))


def write_heap_report(path: Path, owners: Mapping[str, Any], top: int = 30) -> HeapReport:
    """Measure and write the report to ``path`` (replaced whole, so a reader never sees
    half of one), and log where it is."""
    report = measure(owners)
    partial = path.with_name(path.name + ".partial")
    partial.write_text("\n".join(report.lines(top)) + "\n")
    os.replace(partial, path)
    log.info(
        "heap report written to %s: %d live objects, %.0f MiB",
        path,
        report.total.objects,
        report.total.bytes / 2**20,
    )
    return report

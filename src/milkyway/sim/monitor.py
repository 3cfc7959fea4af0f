"""Pod readiness transitions per cluster, for invariants over a whole run.

``subscribe(cluster, callback)`` calls ``callback(transition)`` synchronously each time a
pod's readiness (or existence) changes, so a test can assert, e.g., "never more than K
members of a quorum down at once" at every instant, not just at the samples it happens
to take. :class:`Tally` keeps such running extremes for one label selection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from milkyway.sim.controllers.objects import (
    Obj,
    is_pod_ready,
    is_terminating,
    labels_of,
    name_of,
    namespace_of,
    pod_phase,
)


class _Subscribable(Protocol):
    name: str

    def subscribe(self, resource: str, callback: Callable[[Any], None]) -> Callable[[], None]: ...

    def clock(self) -> datetime: ...


@dataclass(frozen=True)
class Transition:
    """A pod became Ready or stopped being Ready (``alive``: exists and not terminating)."""

    cluster: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    ready: bool
    alive: bool
    at: datetime


def _api_of(cluster: Any) -> _Subscribable:
    return getattr(cluster, "api", cluster)


def subscribe(cluster: Any, callback: Callable[[Transition], None]) -> Callable[[], None]:
    """Report readiness transitions of every pod of ``cluster`` (a ClusterAPI or anything
    with an ``api``); returns the unsubscribe function. Pods existing at subscription time
    are reported once with their current state."""
    api = _api_of(cluster)
    last: dict[tuple[str, str], tuple[str, bool, bool]] = {}

    def on_event(event: Any) -> None:
        pod: Obj = event.object
        key = (namespace_of(pod), name_of(pod))
        uid = (pod.get("metadata") or {}).get("uid", "")
        if event.type == "DELETED":
            ready, alive = False, False
        else:
            alive = not is_terminating(pod) and pod_phase(pod) not in ("Succeeded", "Failed")
            ready = alive and is_pod_ready(pod)
        before = last.get(key)
        if before is not None and before == (uid, ready, alive):
            return
        if event.type == "DELETED":
            last.pop(key, None)
            if before is not None and not before[1] and not before[2]:
                return
        else:
            last[key] = (uid, ready, alive)
        callback(
            Transition(api.name, key[0], key[1], dict(labels_of(pod)), ready, alive, api.clock())
        )

    return api.subscribe("v1/pods", on_event)


async def transitions(cluster: Any) -> AsyncIterator[Transition]:
    """The same transitions as an async iterator (unsubscribes when the loop ends)."""
    queue: asyncio.Queue[Transition] = asyncio.Queue()
    unsubscribe = subscribe(cluster, queue.put_nowait)
    try:
        while True:
            yield await queue.get()
    finally:
        unsubscribe()


@dataclass
class Tally:
    """Running counts and extremes for the pods whose labels match ``selector``.

    ``min_ready``/``max_alive`` hold over every transition since the last :meth:`reset`;
    ``max_down(expected)`` is the most members short of Ready at any instant.
    """

    selector: Mapping[str, str]
    namespace: str | None = None
    ready: set[tuple[str, str]] = field(default_factory=set)
    alive: set[tuple[str, str]] = field(default_factory=set)
    min_ready: int | None = None
    max_alive: int = 0
    max_ready: int = 0
    history: list[Transition] = field(default_factory=list)

    def __call__(self, t: Transition) -> None:
        if self.namespace is not None and t.namespace != self.namespace:
            return
        if any(t.labels.get(k) != v for k, v in self.selector.items()):
            return
        key = (t.namespace, t.name)
        (self.ready.add if t.ready else self.ready.discard)(key)
        (self.alive.add if t.alive else self.alive.discard)(key)
        self.history.append(t)
        self._observe()

    def _observe(self) -> None:
        n = len(self.ready)
        self.min_ready = n if self.min_ready is None else min(self.min_ready, n)
        self.max_ready = max(self.max_ready, n)
        self.max_alive = max(self.max_alive, len(self.alive))

    def reset(self) -> None:
        """Start a new observation window from the current state."""
        self.min_ready = None
        self.max_alive = 0
        self.max_ready = 0
        self.history.clear()
        self._observe()

    def max_down(self, expected: int) -> int:
        return expected - (self.min_ready if self.min_ready is not None else 0)


@dataclass
class ZoneInvariant:
    """Checks a zone disruption policy at every transition of the pods whose labels match
    ``selector``: never members of two zones (label ``zone_label``) down at once, never
    more than ``budget`` down. A pod counts as down from the moment it is not Ready until
    a pod of the same name is Ready again (a deleted member is down until its
    replacement is). Pods that exist when it starts are taken as they are reported.

    It records, never raises (it runs inside the simulator's event dispatch):
    ``violations`` says what broke the policy and when, ``max_zones``/``max_down`` the
    worst instants; ``reset`` starts a new window from the current state."""

    selector: Mapping[str, str]
    zone_label: str
    budget: int
    namespace: str | None = None
    down: dict[str, str] = field(default_factory=dict)
    """Pod name to its zone, for every member down now."""
    max_zones: int = 0
    max_down: int = 0
    violations: list[str] = field(default_factory=list)

    def __call__(self, t: Transition) -> None:
        if self.namespace is not None and t.namespace != self.namespace:
            return
        if any(t.labels.get(k) != v for k, v in self.selector.items()):
            return
        key = f"{t.cluster}/{t.name}"
        if t.ready:
            self.down.pop(key, None)
            return
        self.down[key] = t.labels.get(self.zone_label, "")
        zones = sorted(set(self.down.values()))
        self.max_zones = max(self.max_zones, len(zones))
        self.max_down = max(self.max_down, len(self.down))
        if len(zones) > 1:
            self.violations.append(
                f"{t.at.isoformat()}: members of {len(zones)} zones down at once "
                f"({', '.join(zones)}): {', '.join(sorted(self.down))}"
            )
        if len(self.down) > self.budget:
            self.violations.append(
                f"{t.at.isoformat()}: {len(self.down)} members down, the budget is "
                f"{self.budget}: {', '.join(sorted(self.down))}"
            )

    def reset(self) -> None:
        self.max_zones = len(set(self.down.values()))
        self.max_down = len(self.down)
        self.violations.clear()

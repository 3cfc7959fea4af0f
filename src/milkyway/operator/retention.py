"""Retention of the FlowRuns health checks and notifications leave behind.

A check every 5 minutes is 288 runs a day per Application; kept forever they would
outgrow everything else. Of each Application's scheduled health runs the newest
:data:`KEEP_HEALTH_RUNS` of each kind stay (``status.health.history`` keeps the story);
a delivery stays :data:`KEEP_DELIVERIES_FOR` seconds after it finished (it is the record
that makes a repeated event send nothing, and nothing repeats an event that old: a
flow's events are only replayed for runs finished within minutes, a change of health is
numbered and marked told). Unfinished runs are never removed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lightkube import ApiError, AsyncClient

from milkyway.flows.schedule import FIRED_LABEL, SCHEDULE_LABEL
from milkyway.kube.resources import FLOWRUN
from milkyway.model.flow import TERMINAL_RUN_PHASES
from milkyway.notify.center import NOTIFICATION_LABEL
from milkyway.operator.health.schedule import HEALTH_LABEL

log = logging.getLogger("milkyway.operator")

KEEP_HEALTH_RUNS = 3
KEEP_DELIVERIES_FOR = 24 * 3600.0
PRUNE_INTERVAL = 60.0


def _finished(run: Mapping[str, Any]) -> bool:
    status = run.get("status") or {}
    return status.get("phase") in TERMINAL_RUN_PHASES


def old_health_runs(runs: Iterable[Mapping[str, Any]], keep: int = KEEP_HEALTH_RUNS) -> list[str]:
    """Names of the finished health runs beyond the newest ``keep`` of each Application
    and kind."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for run in runs:
        labels = (run.get("metadata") or {}).get("labels") or {}
        groups.setdefault(
            (labels.get(HEALTH_LABEL, ""), labels.get(SCHEDULE_LABEL, "")), []
        ).append(run)
    found: list[str] = []
    for group in groups.values():
        group.sort(key=lambda r: int(r["metadata"]["labels"].get(FIRED_LABEL, "0") or 0))
        found.extend(r["metadata"]["name"] for r in group[:-keep] if _finished(r))
    return sorted(found)


def old_deliveries(
    runs: Iterable[Mapping[str, Any]], now: float, keep_for: float = KEEP_DELIVERIES_FOR
) -> list[str]:
    """Names of the deliveries finished more than ``keep_for`` seconds ago."""
    found = []
    for run in runs:
        finished = (run.get("status") or {}).get("finishedAt")
        if _finished(run) and finished is not None and now - float(finished) > keep_for:
            found.append(run["metadata"]["name"])
    return sorted(found)


async def prune(
    client: AsyncClient, namespace: str, runs: Iterable[Mapping[str, Any]], now: float
) -> int:
    """Delete what is no longer kept of ``runs`` (the FlowRuns of ``namespace``, as the
    operator's watch holds them); returns how many runs were deleted.

    The runs come from the watch's cache, not from a listing: at 1,000 Applications a
    namespace holds some 4,000 health runs, which the operator's FlowRun watch already
    holds, so listing them whole every minute (with their flow snapshots) was work done
    twice. A cache that lags can only make a run look newer than it is, so it is kept a
    minute longer, never deleted early: a health run goes when ``keep`` newer ones of
    its group are seen, a delivery by its own finish time.
    """
    health: list[Mapping[str, Any]] = []
    deliveries: list[Mapping[str, Any]] = []
    for run in runs:
        labels = (run.get("metadata") or {}).get("labels") or {}
        if HEALTH_LABEL in labels:
            health.append(run)
        if NOTIFICATION_LABEL in labels:
            deliveries.append(run)
    deleted = 0
    for name in [*old_health_runs(health), *old_deliveries(deliveries, now)]:
        try:
            await client.delete(FLOWRUN, name, namespace=namespace)
            deleted += 1
        except ApiError as exc:
            if exc.status.code != 404:
                raise
    return deleted


async def prune_forever(
    client: AsyncClient,
    runs: Callable[[], Iterable[Mapping[str, Any]]],
    clock: Callable[[], float],
    interval: float = PRUNE_INTERVAL,
) -> None:
    """Every ``interval``, prune each namespace's runs of ``runs()`` (every FlowRun the
    watch holds, or nothing while it has not listed yet)."""
    while True:
        await asyncio.sleep(interval)
        by_namespace: dict[str, list[Mapping[str, Any]]] = {}
        for run in runs():
            namespace = (run.get("metadata") or {}).get("namespace") or ""
            by_namespace.setdefault(namespace, []).append(run)
        for namespace in sorted(by_namespace):
            try:
                deleted = await prune(client, namespace, by_namespace[namespace], clock())
            except Exception as exc:
                # Retention is housekeeping: it must never stop the operator.
                log.warning("pruning runs of %s: %s: %s", namespace, type(exc).__name__, exc)
                continue
            if deleted:
                log.info("%s: %d finished health and notification runs removed", namespace, deleted)


__all__ = ["old_deliveries", "old_health_runs", "prune", "prune_forever"]

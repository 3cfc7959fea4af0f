"""Notification events in what the operator's FlowRun watch shows of an Application's runs.

A pure function of one run (as the watch decodes it) and whether it was just seen
changing: a finished run gives ``flow-failed`` or ``flow-succeeded``; a task that failed
an attempt gives ``task-failed`` once per task and run (``once_per`` is the run and the
task's path, so its retries, and a watch replayed after a restart, add nothing); an
approval waiting gives ``approval-requested``, decided ``approval-decided``.

A run first seen already finished (the operator just started) gives events only if it
finished within :data:`RECENT` seconds: what happened while no operator ran is told,
history is not.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from milkyway.model.flow import TERMINAL_RUN_PHASES
from milkyway.notify.triggers import Event

RECENT = 600.0


def flow_events(
    run: Mapping[str, Any], application: str, *, first_seen: bool, now: float | None = None
) -> list[Event]:
    metadata = run.get("metadata") or {}
    status = run.get("status") or {}
    namespace = metadata.get("namespace") or ""
    name = metadata.get("name", "")
    flow = (run.get("spec") or {}).get("flow") or ""
    phase = status.get("phase") or "Pending"
    now = time.time() if now is None else now
    if first_seen and phase in TERMINAL_RUN_PHASES:
        finished = status.get("finishedAt")
        if finished is None or now - float(finished) > RECENT:
            return []
    base = {"flow": flow, "run": name, "phase": phase}
    events: list[Event] = []
    nodes = status.get("nodes") or {}
    for path, node in sorted(nodes.items()):
        kind = node.get("kind")
        if kind == "task" and (int(node.get("failures") or 0) > 0 or node.get("phase") == "Failed"):
            attempt = max(int(node.get("failures") or 0), 1)
            events.append(
                Event(
                    "task-failed",
                    namespace,
                    application,
                    f"{name}/{path}",
                    {
                        **base,
                        "task": node.get("name") or path,
                        "path": path,
                        "attempt": attempt,
                        "details": node.get("message") or "",
                    },
                )
            )
        elif kind == "approval" and node.get("phase") == "Waiting":
            events.append(
                Event(
                    "approval-requested",
                    namespace,
                    application,
                    f"{name}/{path}",
                    {
                        **base,
                        "step": node.get("name") or path,
                        "details": node.get("message") or "",
                    },
                )
            )
        elif kind == "approval" and node.get("decision"):
            decision = node["decision"]
            events.append(
                Event(
                    "approval-decided",
                    namespace,
                    application,
                    f"{name}/{path}",
                    {
                        **base,
                        "step": node.get("name") or path,
                        "decision": "approved" if decision.get("approved") else "rejected",
                        "by": decision.get("by", ""),
                        "details": decision.get("reason", ""),
                    },
                )
            )
    if phase == "Failed":
        failed = [
            (path, node.get("message"))
            for path, node in nodes.items()
            if node.get("phase") == "Failed" and node.get("message")
        ]
        details = max(failed, key=lambda f: len(f[0]))[1] if failed else status.get("message") or ""
        events.append(
            Event("flow-failed", namespace, application, name, {**base, "details": details})
        )
    elif phase == "Succeeded":
        events.append(Event("flow-succeeded", namespace, application, name, base))
    return events

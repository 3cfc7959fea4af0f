"""A notification delivery as people read it: a delivery is a FlowRun of
``milkyway-notify`` (one per event and subscription), so its state is the run's — Sent,
Retrying (with the last error), Failed, Pending — and its attempts are the deliver step's.
``milkyway notifications`` and the server's deliveries endpoint both show these rows."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from milkyway.notify.center import NOTIFICATION_LABEL, SERVICE_LABEL, TRIGGER_LABEL

STATUS = {
    "Succeeded": "Sent",
    "Failed": "Failed",
    "Cancelled": "Cancelled",
    "Running": "Sending",
    "Pending": "Pending",
    "Paused": "Paused",
}


def delivery_row(run: Mapping[str, Any], now: float | None = None) -> dict[str, str]:
    """One delivery as the table shows it."""
    metadata = run.get("metadata") or {}
    labels = metadata.get("labels") or {}
    params = (run.get("spec") or {}).get("params") or {}
    status = run.get("status") or {}
    node = (status.get("nodes") or {}).get("deliver") or {}
    state = STATUS.get(status.get("phase") or "Pending", status.get("phase") or "Pending")
    if node.get("phase") == "Retrying":
        state = "Retrying"
    attempts = len(node.get("attempts") or []) + int(node.get("compacted") or 0)
    outputs = node.get("outputs") or {}
    detail = outputs.get("subject") if state == "Sent" else node.get("message") or ""
    started = status.get("startedAt")
    age = ""
    if started:
        age = f"{int((now or time.time()) - float(started))}s"
    return {
        "namespace": metadata.get("namespace", ""),
        "application": labels.get(NOTIFICATION_LABEL, ""),
        "trigger": labels.get(TRIGGER_LABEL, params.get("trigger", "")),
        "service": labels.get(SERVICE_LABEL, params.get("service", "")),
        "recipients": ", ".join(params.get("recipients") or []),
        "status": state,
        "attempts": str(attempts),
        "detail": str(detail or ""),
        "age": age,
        "name": metadata.get("name", ""),
    }


def delivery_rows(runs: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    rows = [delivery_row(r) for r in runs]
    return sorted(rows, key=lambda r: (r["namespace"], r["application"], r["name"]))

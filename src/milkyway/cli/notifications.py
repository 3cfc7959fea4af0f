"""``milkyway notifications``: every delivery with its status.

A delivery is a FlowRun of ``milkyway-notify`` (one per event and subscription), so its
status is the run's: Sent, Retrying (with the last error), Failed, Pending.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

import typer
from lightkube import ALL_NS
from rich.console import Console
from rich.table import Table

from milkyway.cli.flow import ContextOpt, KubeconfigOpt, _client
from milkyway.kube.resources import FLOWRUN
from milkyway.notify.center import NOTIFICATION_LABEL, SERVICE_LABEL, TRIGGER_LABEL

console = Console()
STATUS = {
    "Succeeded": "Sent",
    "Failed": "Failed",
    "Cancelled": "Cancelled",
    "Running": "Sending",
    "Pending": "Pending",
    "Paused": "Paused",
}
STYLE = {"Sent": "green", "Failed": "red", "Retrying": "yellow", "Sending": "cyan"}


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


def notifications(
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
    namespace: str = typer.Option(
        None, "--namespace", "-n", help="only this namespace (default: every namespace)"
    ),
    application: str = typer.Option(None, "--application", "-a", help="only this Application"),
) -> None:
    """List notification deliveries (email, Slack, webhooks) with their status."""

    async def go() -> list[dict[str, Any]]:
        client = _client(kubeconfig, context, namespace or "default")
        selector: dict[str, Any] = {NOTIFICATION_LABEL: application or None}
        try:
            return [
                r.to_dict()
                async for r in client.list(FLOWRUN, namespace=namespace or ALL_NS, labels=selector)
            ]
        finally:
            await client.close()

    rows = delivery_rows(asyncio.run(go()))
    table = Table(
        "NAMESPACE",
        "APPLICATION",
        "TRIGGER",
        "SERVICE",
        "TO",
        "STATUS",
        "ATTEMPTS",
        "DETAIL",
        "AGE",
        box=None,
    )
    for row in rows:
        status = row["status"]
        table.add_row(
            row["namespace"],
            row["application"],
            row["trigger"],
            row["service"],
            row["recipients"],
            f"[{STYLE.get(status, '')}]{status}[/]",
            row["attempts"],
            row["detail"][:80],
            row["age"],
        )
    console.print(table)
    if not rows:
        console.print("no deliveries yet")

"""``milkyway notifications``: every delivery with its status.

A delivery is a FlowRun of ``milkyway-notify`` (one per event and subscription), so its
status is the run's: Sent, Retrying (with the last error), Failed, Pending.
"""

from __future__ import annotations

import asyncio
from typing import Any

import typer
from lightkube import ALL_NS
from rich.console import Console
from rich.table import Table

from milkyway.cli.flow import ContextOpt, KubeconfigOpt, _client
from milkyway.kube.resources import FLOWRUN
from milkyway.notify.center import NOTIFICATION_LABEL
from milkyway.notify.deliveries import delivery_rows

console = Console()
STYLE = {"Sent": "green", "Failed": "red", "Retrying": "yellow", "Sending": "cyan"}


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

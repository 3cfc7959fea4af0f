"""``milkyway sudo``: ask milkyway server for a Milkyway role in one namespace for a
while, with a reason, and see where the request stands.

The request is approved like any change (the ApprovalPolicies covering ``sudo``; you
cannot approve your own); once granted, calls made through the server with
``MILKYWAY_SUDO=NAMESPACE/GRANT`` set use the role, and the audit trail names the grant.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from milkyway.cli.server_commands import SUDO_ENV, call_server

app = typer.Typer(
    name="sudo",
    help="Ask for time-bound elevation (approved per ApprovalPolicy), or see a request.",
    invoke_without_command=True,
    add_completion=False,
)
console = Console()

ServerOpt = Annotated[
    str,
    typer.Option("--server", envvar="MILKYWAY_SERVER", help="The Milkyway server's URL."),
]
NamespaceOpt = Annotated[
    str, typer.Option("--namespace", "-n", help="Namespace the role is wanted in.")
]


def _show(answer: dict[str, Any]) -> None:
    console.print(
        f"sudo grant {answer['namespace']}/{answer['grant']} ({answer['role']}): "
        f"{answer['state']}: {answer['message']}"
    )
    if answer["state"] in ("Waiting", "Granted"):
        console.print(
            f"use it (once granted) with: export {SUDO_ENV}={answer['namespace']}/{answer['grant']}"
        )


@app.callback()
def sudo(
    ctx: typer.Context,
    server: ServerOpt = "",
    namespace: NamespaceOpt = "",
    role: Annotated[
        str, typer.Option("--role", help="milkyway-viewer, -editor, -approver or -admin")
    ] = "",
    duration: Annotated[str, typer.Option("--for", help="How long, like 30m or 1h.")] = "",
    reason: Annotated[str, typer.Option("--reason", help="Why, e.g. INC-123.")] = "",
) -> None:
    """Request ROLE in NAMESPACE for a while: milkyway sudo --role milkyway-admin
    -n team-a --for 30m --reason INC-123 --server URL"""
    if ctx.invoked_subcommand is not None:
        return
    missing = [
        flag
        for flag, value in (
            ("--server", server),
            ("--namespace", namespace),
            ("--role", role),
            ("--for", duration),
            ("--reason", reason),
        )
        if not value
    ]
    if missing:
        raise typer.BadParameter(f"give {', '.join(missing)}")
    answer = call_server(
        server,
        "POST",
        f"/namespaces/{namespace}/sudo",
        {"role": role, "duration": duration, "reason": reason},
    )
    _show(answer)


@app.command("status")
def status(
    grant: Annotated[str, typer.Argument(help="The grant id milkyway sudo printed.")],
    server: ServerOpt = "",
    namespace: NamespaceOpt = "",
) -> None:
    """Where a request stands: waiting (for whom), granted (until when), refused, expired."""
    if not server or not namespace:
        raise typer.BadParameter("give --server and --namespace")
    _show(call_server(server, "GET", f"/namespaces/{namespace}/sudo/{grant}"))

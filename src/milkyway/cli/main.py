"""Entry point of the ``milkyway`` command: one Typer app with a sub-app per area.

Each area (simulator, model, flows, operator) owns its own module under ``milkyway.cli``
and is mounted here, so the commands stay discoverable from ``milkyway --help``.
"""

from __future__ import annotations

import typer

from milkyway import __version__
from milkyway.cli import agent as agent_cli
from milkyway.cli import (
    agent_commands,
    app_commands,
    cluster_commands,
    model_commands,
    rotate_commands,
    server_commands,
)
from milkyway.cli import demo as demo_cli
from milkyway.cli import flow as flow_cli
from milkyway.cli import notifications as notifications_cli
from milkyway.cli import operator as operator_cli
from milkyway.cli import sim as sim_cli
from milkyway.cli import sudo as sudo_cli
from milkyway.cli.unreachable import print_unreachable
from milkyway.kube.errors import is_transport_error

app = typer.Typer(
    name="milkyway",
    help="Deploy and run geo-distributed stateful data systems across Kubernetes clusters.",
    no_args_is_help=True,
    add_completion=False,
)

app.add_typer(sim_cli.app, name="sim")
app.command("demo")(demo_cli.demo)
app.command("notifications")(notifications_cli.notifications)
app.add_typer(app_commands.app)
app.add_typer(model_commands.app)
app.add_typer(flow_cli.app, name="flow")
app.add_typer(operator_cli.app, name="operator")
app.add_typer(server_commands.server_app)
app.add_typer(server_commands.audit_app, name="audit")
app.command("agent")(agent_cli.agent)
app.add_typer(agent_commands.app)
app.add_typer(rotate_commands.app)
app.add_typer(cluster_commands.app, name="cluster")
app.add_typer(sudo_cli.app, name="sudo")


@app.callback()
def _root() -> None:
    """Deploy and run geo-distributed stateful data systems across Kubernetes clusters."""


@app.command()
def version() -> None:
    """Print Milkyway's version."""
    typer.echo(__version__)


def main() -> None:
    """The ``milkyway`` command: a cluster that does not answer is one line, not a traceback."""
    try:
        app()
    except Exception as exc:
        if not is_transport_error(exc):
            raise
        print_unreachable(exc)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

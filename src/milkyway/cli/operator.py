"""``milkyway operator run``: the operator process, against any kubeconfig.

It runs until interrupted (Ctrl-C or SIGTERM stop it cleanly: the leader Lease is
released so a standby replica takes over at once) and logs what it does: CRDs,
leadership, member clusters coming and going, every flow started and finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import typer
from lightkube import ApiError

from milkyway.cli.model_commands import read_security_policy
from milkyway.cli.task_modules import import_task_modules
from milkyway.cli.unreachable import print_unreachable
from milkyway.kube.clients import KubeconfigError
from milkyway.kube.errors import TRANSPORT_ERRORS
from milkyway.operator.manager import Operator, OperatorSettings, default_identity

app = typer.Typer(name="operator", help="Run the Milkyway operator.", no_args_is_help=True)


@app.command()
def run(
    kubeconfig: Path = typer.Option(
        ..., "--kubeconfig", envvar="KUBECONFIG", help="kubeconfig of the management cluster"
    ),
    context: str | None = typer.Option(None, "--context", help="kubeconfig context"),
    namespace: str = typer.Option(
        "milkyway-system", "--namespace", "-n", help="namespace of the leader Lease"
    ),
    workers: int = typer.Option(4, "--workers", min=1, help="Applications reconciled at once"),
    leader_election: bool = typer.Option(
        True, "--leader-election/--no-leader-election", help="campaign for a Lease (HA)"
    ),
    identity: str | None = typer.Option(
        None, "--identity", help="this replica's name in the Lease (default: host-pid)"
    ),
    install_crds: bool = typer.Option(
        True, "--install-crds/--no-install-crds", help="install or upgrade the CRDs on start"
    ),
    flows: list[Path] = typer.Option([], "--flows", "-f", help="extra Flow files or folders"),
    tasks: list[str] = typer.Option(
        [], "--tasks", help="module (dotted name or .py file) registering extra tasks; repeatable"
    ),
    heartbeat: float = typer.Option(
        10.0, "--heartbeat", min=0.1, help="seconds between member cluster heartbeats"
    ),
    security_policy: Path | None = typer.Option(
        None,
        "--security-policy",
        help="YAML allowing ComponentTypes more than the default pod security "
        "(allowCapabilities, allowPaths, allowServiceAccountToken)",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging"),
) -> None:
    """Watch Applications and close the gap between what should be and what is."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    import_task_modules(tasks)
    try:
        settings = OperatorSettings(
            namespace=namespace,
            workers=workers,
            leader_election=leader_election,
            identity=identity or default_identity(),
            install_crds=install_crds,
            heartbeat_interval=heartbeat,
            security_policy=read_security_policy(security_policy),
        )
        operator = Operator(kubeconfig, context, settings, flow_paths=flows)
    except (KubeconfigError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        asyncio.run(_serve(operator))
    except KubeconfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ApiError as exc:
        typer.echo(
            f"error: the management cluster refused {exc.status.reason or ''} "
            f"({exc.status.code}): {exc.status.message}; check the context's permissions "
            "(the operator needs CRDs, Leases, Secrets, Events and Milkyway's resources)",
            err=True,
        )
        raise typer.Exit(1) from None
    except TRANSPORT_ERRORS as exc:
        print_unreachable(exc)
        raise typer.Exit(1) from None


async def _serve(operator: Operator) -> None:
    main = asyncio.create_task(operator.run_forever())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, main.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await main

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
from milkyway.kube.in_cluster import management_kubeconfig
from milkyway.operator.manager import Operator, OperatorSettings, default_identity
from milkyway.operator.shard_count import DEFAULT_DEPLOYMENT, ShardSetting
from milkyway.telemetry.heap import write_heap_report
from milkyway.telemetry.http import MetricsServer
from milkyway.telemetry.logs import configure_logging
from milkyway.telemetry.watchdog import LoopWatchdog

app = typer.Typer(name="operator", help="Run the Milkyway operator.", no_args_is_help=True)


@app.command()
def run(
    kubeconfig: Path | None = typer.Option(
        None,
        "--kubeconfig",
        envvar="KUBECONFIG",
        help="kubeconfig of the management cluster (default: in-cluster, else ~/.kube/config)",
    ),
    context: str | None = typer.Option(None, "--context", help="kubeconfig context"),
    namespace: str = typer.Option(
        "milkyway-system", "--namespace", "-n", help="namespace of the leader Lease"
    ),
    workers: int = typer.Option(4, "--workers", min=1, help="Applications reconciled at once"),
    leader_election: bool = typer.Option(
        True, "--leader-election/--no-leader-election", help="campaign for a Lease (HA)"
    ),
    shards: str = typer.Option(
        "0",
        "--shards",
        envvar="MILKYWAY_OPERATOR_SHARDS",
        help="split the Applications into N shards, one Lease each, spread over the "
        "replicas (0: one leader does all; auto: as many as the replicas of the Deployment "
        "named by --deployment)",
    ),
    deployment: str = typer.Option(
        DEFAULT_DEPLOYMENT,
        "--deployment",
        help="the operator's own Deployment in --namespace, whose replica count "
        "--shards auto follows",
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
    resync: float = typer.Option(
        OperatorSettings.resync_period,
        "--resync",
        help="seconds after its last reconcile an Application is reconciled again even if "
        "nothing changed (the safety net for a missed event)",
    ),
    security_policy: Path | None = typer.Option(
        None,
        "--security-policy",
        help="YAML allowing ComponentTypes more than the default pod security "
        "(allowCapabilities, allowPaths, allowServiceAccountToken)",
    ),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", min=0, help="serve /metrics and /healthz on this port (0: any)"
    ),
    metrics_host: str = typer.Option(
        "0.0.0.0", "--metrics-host", help="address of the /metrics endpoint"
    ),
    heap_profile: Path | None = typer.Option(
        None,
        "--heap-profile",
        help="on SIGUSR1, write where the memory is (live objects by type and by cache) "
        "to this file",
    ),
    log_format: str = typer.Option("text", "--log-format", help="text or json (one object a line)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging"),
) -> None:
    """Watch Applications and close the gap between what should be and what is."""
    try:
        configure_logging(log_format, verbose)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if heap_profile is not None and not heap_profile.parent.is_dir():
        typer.echo(
            f"error: --heap-profile {heap_profile}: the folder {heap_profile.parent} does not "
            "exist; name a file in an existing folder",
            err=True,
        )
        raise typer.Exit(2)
    if not resync >= 1.0:
        typer.echo(
            f"error: --resync {resync:g}: the period between resyncs must be at least 1 second; "
            f"the default is {OperatorSettings.resync_period:g}",
            err=True,
        )
        raise typer.Exit(2)
    import_task_modules(tasks)
    try:
        sharding = ShardSetting.parse(shards)
        settings = OperatorSettings(
            namespace=namespace,
            workers=workers,
            leader_election=leader_election,
            shards=sharding.count,
            shards_deployment=deployment if sharding.auto else None,
            identity=identity or default_identity(),
            install_crds=install_crds,
            heartbeat_interval=heartbeat,
            resync_period=resync,
            security_policy=read_security_policy(security_policy),
        )
        source, context = management_kubeconfig(kubeconfig, context)
        operator = Operator(source, context, settings, flow_paths=flows)
    except (KubeconfigError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    endpoint = None
    watchdog = LoopWatchdog()
    if metrics_port is not None:
        endpoint = MetricsServer(metrics_host, metrics_port, healthy=watchdog.healthy).start()
        logging.getLogger("milkyway.operator").info(
            "metrics on http://%s:%d/metrics", metrics_host, endpoint.port
        )
    try:
        asyncio.run(_serve(operator, watchdog, heap_profile))
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
    finally:
        if endpoint is not None:
            endpoint.close()


def _heap_report(path: Path, operator: Operator) -> None:
    try:
        write_heap_report(path, operator.heap_owners())
    except OSError as exc:
        logging.getLogger("milkyway.operator").error("heap report not written: %s", exc)


async def _serve(operator: Operator, watchdog: LoopWatchdog, heap_profile: Path | None) -> None:
    ticking = asyncio.create_task(watchdog.run())
    main = asyncio.create_task(operator.run_forever())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, main.cancel)
    if heap_profile is not None:
        loop.add_signal_handler(signal.SIGUSR1, _heap_report, heap_profile, operator)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await main
    finally:
        ticking.cancel()

"""``milkyway sim up``: run simulated Kubernetes clusters locally."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import typer

from milkyway.cli.sim_fault import app as fault_app
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.process import ImageMap, ImageRule, load_rules_file, parse_run

app = typer.Typer(help="Run simulated Kubernetes clusters (real HTTP API servers on 127.0.0.1).")
app.add_typer(fault_app, name="fault")

DEFAULT_CLUSTERS = "mgmt,na-phx,na-slc,eu-ams"
DEFAULT_KUBECONFIG = Path.home() / ".milkyway" / "sim" / "kubeconfig"


def image_map(run: list[str], run_file: list[Path], processes: bool) -> ImageMap | None:
    """The image rules of ``--run`` and ``--run-file`` (in that order) before the built-in
    ones; None with ``--no-processes`` (every pod simulated)."""
    if not processes:
        if run or run_file:
            raise typer.BadParameter("--run/--run-file need processes; drop --no-processes")
        return None
    rules: list[ImageRule] = []
    try:
        rules += [parse_run(spec) for spec in run]
        for path in run_file:
            rules += load_rules_file(path)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    return ImageMap(rules)


def _names(clusters: str) -> list[str]:
    names = [n.strip() for n in clusters.split(",") if n.strip()]
    if not names:
        raise typer.BadParameter("name at least one cluster, e.g. --clusters mgmt,na-phx")
    return names


async def _serve(
    names: list[str],
    data_dir: Path | None,
    kubeconfig: Path,
    rbac: bool,
    exit_after: float | None,
    nodes: int,
    token_file: Path | None = None,
    images: ImageMap | None = None,
    sized_volumes: bool = False,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        sim = await stack.enter_async_context(
            SimulatedClusters(
                names,
                data_dir=data_dir,
                kubeconfig_path=kubeconfig,
                rbac=rbac,
                token_file=token_file,
            )
        )
        if nodes > 0:
            from milkyway.sim.controllers.attach import ControlledClusters

            # With --data-dir, volume directories of process-backed pods survive too.
            state_dir = data_dir / "processes" if data_dir is not None else None
            await stack.enter_async_context(
                ControlledClusters(
                    sim,
                    nodes=nodes,
                    images=images,
                    state_dir=state_dir,
                    sized_volumes=sized_volumes,
                )
            )
            typer.echo(
                f"control plane: scheduler, controllers, {nodes} simulated nodes per cluster"
            )
            if images is not None:
                patterns = ", ".join(dict.fromkeys(r.pattern for r in images.rules))
                typer.echo(f"real processes for images: {patterns}")
        for cluster in sim:
            typer.echo(f"cluster {cluster.name:<10} {cluster.url}")
        typer.echo(f"kubeconfig: {sim.kubeconfig_path}")
        member = names[-1]
        typer.echo(
            "\nTry:\n"
            f"  export KUBECONFIG={sim.kubeconfig_path}\n"
            "  kubectl config get-contexts\n"
            f"  kubectl --context {names[0]} get namespaces\n"
            f"  kubectl --context {member} apply -f - <<'EOF'\n"
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
            "  replicas: 3\n  selector: {matchLabels: {app: web}}\n  template:\n"
            "    metadata: {labels: {app: web}}\n"
            "    spec: {containers: [{name: web, image: nginx:1.27}]}\n"
            "EOF\n"
            f"  kubectl --context {member} get deployments,pods -o wide\n"
            "\nPress Ctrl-C to stop."
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(exit_after):
                await stop.wait()
    typer.echo("stopped")


@app.command("up")
def up(
    clusters: str = typer.Option(DEFAULT_CLUSTERS, help="Comma-separated cluster names."),
    data_dir: Path | None = typer.Option(
        None, help="Keep objects here (SQLite) so they survive a restart."
    ),
    kubeconfig: Path = typer.Option(DEFAULT_KUBECONFIG, help="Where to write the kubeconfig."),
    rbac: bool = typer.Option(False, help="Enforce RBAC for users outside system:masters."),
    exit_after: float | None = typer.Option(
        None, help="Stop after this many seconds (for scripts)."
    ),
    nodes: int = typer.Option(
        3, help="Simulated nodes per cluster, with scheduler, kubelets and controllers (0: none)."
    ),
    token_file: Path | None = typer.Option(
        None,
        help='Users as token,user,uid,"group1,group2" lines (kube-apiserver format); '
        "the first system:masters user goes into the kubeconfig.",
    ),
    run: list[str] = typer.Option(
        [],
        "--run",
        help="Run containers of matching images as local processes: 'IMAGE_PATTERN=COMMAND' "
        "(COMMAND is the image's entrypoint). Repeatable; before the built-in mappings.",
    ),
    run_file: list[Path] = typer.Option(
        [],
        "--run-file",
        help="A YAML file of image mappings: images: [{image, command, env, links, files}].",
    ),
    processes: bool = typer.Option(
        True,
        "--processes/--no-processes",
        help="Run pods whose images are all mapped as real processes (ZooKeeper, etcd and "
        "milkyway images are mapped by default); --no-processes simulates every pod.",
    ),
    sized_volumes: bool = typer.Option(
        False,
        "--sized-volumes",
        help="Make each PersistentVolume of a process-backed pod a filesystem of its "
        "capacity (tmpfs; needs root), so disk usage is real and 'fault fill-disk' works.",
    ),
) -> None:
    """Run the clusters until interrupted; write a kubeconfig with one context per cluster."""
    asyncio.run(
        _serve(
            _names(clusters),
            data_dir,
            kubeconfig,
            rbac,
            exit_after,
            nodes=nodes,
            token_file=token_file,
            images=image_map(run, run_file, processes) if nodes > 0 else None,
            sized_volumes=sized_volumes,
        )
    )

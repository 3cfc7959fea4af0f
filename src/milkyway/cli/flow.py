"""``milkyway flow …``: run, inspect and steer flows through a kubeconfig, like kubectl.

Commands write FlowRuns (new runs) and requests on them (cancel, approve, …); the engine
running in the operator (or ``milkyway flow engine``) carries them out. ``run --local``
drives the run from this process, for clusters without an operator.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
import yaml
from lightkube import ApiError
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from milkyway.cli.task_modules import import_task_modules
from milkyway.cli.unreachable import print_unreachable
from milkyway.flows.dsl import Catalog, FlowError, parse_flow
from milkyway.flows.engine import Engine, add_request, new_run, progress
from milkyway.flows.kube_store import KubeStore
from milkyway.flows.preview import preview_flow
from milkyway.flows.schedule import Scheduler
from milkyway.flows.store import StoreError
from milkyway.flows.tasks import REGISTRY
from milkyway.kube.errors import TRANSPORT_ERRORS
from milkyway.kube.resources import FLOW
from milkyway.model.flow import FlowRun, NodeStatus

app = typer.Typer(name="flow", help="Run and steer flows (lifecycle operations).")
console = Console()
T = TypeVar("T")
PHASE_STYLE = {
    "Succeeded": "green",
    "Failed": "red",
    "Cancelled": "magenta",
    "Running": "cyan",
    "Retrying": "yellow",
    "Waiting": "yellow",
    "Paused": "yellow",
    "Pending": "dim",
    "Skipped": "dim",
    "Omitted": "dim",
}

KubeconfigOpt = typer.Option(None, "--kubeconfig", envvar="KUBECONFIG", help="kubeconfig path")
ContextOpt = typer.Option(None, "--context", help="kubeconfig context (default: current)")
NamespaceOpt = typer.Option("default", "--namespace", "-n", help="namespace of the FlowRuns")
FlowsOpt = typer.Option([], "--flows", "-f", help="extra Flow files or folders")
ActorOpt = typer.Option(None, "--as", help="who you are (default: $USER)")
GroupsOpt = typer.Option([], "--as-group", help="groups you belong to (approvals)")
ServerOpt = typer.Option(
    None,
    "--server",
    envvar="MILKYWAY_SERVER",
    help="decide through this Milkyway server as the signed-in user (default: the server of "
    "the last milkyway login; '' for the cluster directly)",
)
ParamOpt = typer.Option([], "--param", "-p", help="parameter KEY=VALUE (VALUE is YAML)")


def _run(coro: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(coro())  # type: ignore[arg-type]
    except (FlowError, StoreError, ValueError) as exc:
        console.print(f"[red]error:[/red] {str(exc).strip(chr(34))}")
        raise typer.Exit(1) from None
    except TRANSPORT_ERRORS as exc:
        print_unreachable(exc)
        raise typer.Exit(1) from None


def _client(kubeconfig: str | None, context: str | None, namespace: str) -> Any:
    from milkyway.kube.clients import client_from_kubeconfig

    path = kubeconfig or str(Path("~/.kube/config").expanduser())
    return client_from_kubeconfig(path.split(os.pathsep)[0], context, namespace=namespace)


def _actor(actor: str | None, kubeconfig: str | None = None, context: str | None = None) -> str:
    """Who asks: ``--as``, else ``$USER``, else the kubeconfig user of the context (a
    container or CI job often has no ``$USER``), else ``unknown``."""
    from milkyway.kube.clients import kubeconfig_user

    path = (kubeconfig or str(Path("~/.kube/config").expanduser())).split(os.pathsep)[0]
    return actor or os.environ.get("USER") or kubeconfig_user(path, context) or "unknown"


def _params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise FlowError(f"--param {pair!r} must look like KEY=VALUE")
        params[key] = yaml.safe_load(value) if value else ""
    return params


async def _catalog(paths: list[str], client: Any | None, namespace: str) -> Catalog:
    catalog = Catalog.from_paths(paths)
    if client is None:
        return catalog
    try:
        async for obj in client.list(FLOW, namespace=namespace):
            catalog.add(parse_flow(obj.to_dict(), f"Flow {obj.metadata.name}"))
    except ApiError as exc:
        if exc.status.code != 404:
            raise
    return catalog


@app.command("run")
def run_flow(
    flow: str = typer.Argument(..., help="flow name"),
    param: list[str] = ParamOpt,
    version: str = typer.Option(None, help="flow version (default: newest)"),
    target: str = typer.Option("", help="what the run acts on, e.g. stream1/zookeeper"),
    name: str = typer.Option(None, help="run name (default: FLOW-<random>)"),
    local: bool = typer.Option(False, help="drive the run from this process until it ends"),
    tasks: list[str] = typer.Option([], "--tasks", help="modules registering extra tasks"),
    flows: list[str] = FlowsOpt,
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
    namespace: str = NamespaceOpt,
    actor: str = ActorOpt,
) -> None:
    """Start a run of FLOW."""
    import_task_modules(tasks)

    async def go() -> None:
        client = _client(kubeconfig, context, namespace)
        store = KubeStore(client, namespace)
        catalog = await _catalog(flows, client, namespace)
        run = new_run(
            catalog,
            REGISTRY if local else None,
            flow,
            _params(param),
            version=version,
            target=target,
            requested_by=_actor(actor, kubeconfig, context),
            name=name,
            namespace=namespace,
        )
        created = await store.create(run)
        console.print(f"flowrun/{created.metadata.name} created")
        if not local and not await _claimed_within(store, created.metadata.name, CLAIM_WAIT):
            console.print(
                f"[yellow]warning:[/yellow] no flow engine claimed it within {CLAIM_WAIT:.0f}s; "
                f"it stays Pending until one does (is `milkyway operator run` running against "
                f"this cluster? or run `milkyway flow engine -n {namespace}`, or use --local)"
            )
        if local:
            clients = _member_clients(kubeconfig, namespace)
            async with Engine(
                store, catalog, clients=clients, poll_interval=0.5, management=store.client
            ) as engine:
                finished = await engine.wait(created.metadata.name, 24 * 3600, interval=0.5)
            console.print(_tree(finished))
            if finished.status.phase != "Succeeded":
                raise typer.Exit(1)
        await client.close()

    _run(go)


CLAIM_WAIT = 10.0
"""Seconds ``flow run`` waits for an engine to claim the new run before warning."""


async def _claimed_within(store: KubeStore, name: str, within: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if (await store.get(name)).status.owner:
            return True
        await asyncio.sleep(0.5)
    return False


@app.command("list")
def list_runs(
    kubeconfig: str = KubeconfigOpt, context: str = ContextOpt, namespace: str = NamespaceOpt
) -> None:
    """List runs with their flow, target, phase, progress and age."""

    async def go() -> list[FlowRun]:
        client = _client(kubeconfig, context, namespace)
        runs = await KubeStore(client, namespace).list()
        await client.close()
        return runs

    runs = _run(go)
    table = Table("NAME", "FLOW", "TARGET", "PHASE", "PROGRESS", "STARTED", box=None)
    for run in sorted(runs, key=lambda r: r.status.started_at or 0):
        phase = run.status.phase
        table.add_row(
            run.metadata.name,
            run.spec.flow,
            run.spec.target,
            f"[{PHASE_STYLE.get(phase, '')}]{phase}[/]",
            run.status.progress or progress(run.status),
            _when(run.status.started_at),
        )
    console.print(table)


@app.command("show")
def show_run(
    name: str,
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
    namespace: str = NamespaceOpt,
) -> None:
    """Draw a run as a tree with each step's state, attempts and timing."""

    async def go() -> FlowRun:
        client = _client(kubeconfig, context, namespace)
        run = await KubeStore(client, namespace).get(name)
        await client.close()
        return run

    console.print(_tree(_run(go)))


def _request(op: str) -> Callable[..., None]:
    def command(
        name: str,
        reason: str = typer.Option("", help="why (recorded on the run)"),
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
        namespace: str = NamespaceOpt,
        actor: str = ActorOpt,
    ) -> None:
        async def go() -> None:
            client = _client(kubeconfig, context, namespace)
            await add_request(
                KubeStore(client, namespace),
                name,
                op,
                _actor(actor, kubeconfig, context),
                reason=reason,
            )
            await client.close()

        _run(go)
        console.print(f"flowrun/{name}: {op} requested")

    command.__doc__ = f"Ask the engine to {op} run NAME."
    return command


for _op in ("cancel", "retry", "pause", "resume"):
    app.command(_op)(_request(_op))


def _decide(approved: bool) -> Callable[..., None]:
    def command(
        name: str,
        step: str = typer.Argument(..., help="path of the approval step, e.g. confirm"),
        reason: str = typer.Option("", help="why (recorded with the decision)"),
        kubeconfig: str = KubeconfigOpt,
        context: str = ContextOpt,
        namespace: str = NamespaceOpt,
        actor: str = ActorOpt,
        groups: list[str] = GroupsOpt,
        server: str = ServerOpt,
    ) -> None:
        op = "approve" if approved else "reject"
        from milkyway.cli.server_commands import chosen_server

        server = chosen_server(server)
        if server:
            if actor or groups:
                raise typer.BadParameter(
                    f"through {server} you act as the signed-in user; drop --as/--as-group "
                    "(or --server '' to decide on the cluster directly)",
                    param_hint="--as",
                )
            from milkyway.cli.server_commands import call_server

            path = f"/namespaces/{namespace}/flowruns/{name}/decisions/{op}"
            answer = call_server(server, "POST", path, {"step": step, "reason": reason})
            console.print(answer["message"])
            return

        async def go() -> None:
            client = _client(kubeconfig, context, namespace)
            store = KubeStore(client, namespace)
            run = await store.get(name)
            node = run.status.nodes.get(step)
            if node is None or node.kind != "approval":
                gates = [p for p, n in run.status.nodes.items() if n.kind == "approval"]
                raise FlowError(
                    f"run {name} has no approval step {step!r}; its approvals: "
                    f"{', '.join(gates) or 'none'}"
                )
            await add_request(
                store,
                name,
                op,
                _actor(actor, kubeconfig, context),
                groups=groups,
                step=step,
                reason=reason,
            )
            await client.close()

        _run(go)
        console.print(f"flowrun/{name}: {op} of {step} requested")

    command.__doc__ = f"{'Approve' if approved else 'Reject'} an approval step of run NAME."
    return command


app.command("approve")(_decide(True))
app.command("reject")(_decide(False))


@app.command("dry-run")
def dry_run(
    flow: str,
    param: list[str] = ParamOpt,
    version: str = typer.Option(None, help="flow version (default: newest)"),
    flows: list[str] = FlowsOpt,
    kubeconfig: str = typer.Option(None, "--kubeconfig", help="also read Flows from a cluster"),
    context: str = ContextOpt,
    namespace: str = NamespaceOpt,
) -> None:
    """Print the plan a run would execute, with subflows and fan-out batches expanded."""

    async def go() -> Catalog:
        if kubeconfig is None:
            return Catalog.from_paths(flows)
        client = _client(kubeconfig, context, namespace)
        catalog = await _catalog(flows, client, namespace)
        await client.close()
        return catalog

    catalog = _run(go)
    try:
        tree = preview_flow(catalog, flow, _params(param), version)
    except (FlowError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    typer.echo("\n".join(tree.lines()))


@app.command("engine")
def run_engine(
    flows: list[str] = FlowsOpt,
    tasks: list[str] = typer.Option([], "--tasks", help="modules registering extra tasks"),
    engine_id: str = typer.Option(None, "--id", help="engine identity (default: random)"),
    lease: float = typer.Option(15.0, help="seconds a run stays owned without renewal"),
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
    namespace: str = NamespaceOpt,
) -> None:
    """Run the flow engine and scheduler against a cluster until interrupted."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("milkyway").setLevel(logging.INFO)
    import_task_modules(tasks)

    async def go() -> None:
        client = _client(kubeconfig, context, namespace)
        store = KubeStore(client, namespace)
        catalog = await _catalog(flows, client, namespace)
        clients = _member_clients(kubeconfig, namespace)
        engine = Engine(
            store,
            catalog,
            clients=clients,
            engine_id=engine_id,
            lease_seconds=lease,
            poll_interval=min(1.0, lease / 5),
            management=client,
        )
        logging.getLogger("milkyway.flows").info(
            "engine %s driving flowruns in %s", engine.engine_id, namespace
        )
        async with engine:
            scheduler = asyncio.create_task(Scheduler(engine).run())
            while not scheduler.done():
                await asyncio.sleep(30)
                # Flows created or edited since start: new runs and schedules use them.
                engine.catalog = await _catalog(flows, client, namespace)
            scheduler.result()

    _run(go)


def _member_clients(kubeconfig: str | None, namespace: str) -> dict[str, Any]:
    from milkyway.kube.clients import context_names, load_kubeconfig

    path = (kubeconfig or str(Path("~/.kube/config").expanduser())).split(os.pathsep)[0]
    names = context_names(load_kubeconfig(path))
    return {name: _client(path, name, namespace) for name in names}


# --- rendering ------------------------------------------------------------------------------


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _duration(node: NodeStatus, now: float) -> str:
    if node.started_at is None:
        return ""
    end = node.finished_at if node.finished_at is not None else now
    seconds = max(0.0, end - node.started_at)
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def _label(node: NodeStatus, now: float) -> str:
    style = PHASE_STYLE.get(node.phase, "")
    name = node.path.rsplit("/", 1)[-1] or node.name
    parts = [f"[bold]{name}[/bold]", f"[{style}]{node.phase}[/]"]
    if node.kind == "task":
        parts.append(f"[dim]{node.action}[/dim]")
    if node.kind == "group" and node.members is not None:
        batches = len(node.batches or [])
        parts.append(f"[dim]{len(node.members)} members, batch {node.batch + 1}/{batches}[/dim]")
    attempts = node.compacted + len(node.attempts)
    if attempts > 1:
        parts.append(f"attempts {attempts}")
    duration = _duration(node, now)
    if duration:
        parts.append(duration)
    if node.decision is not None:
        verb = "approved" if node.decision.approved else "rejected"
        parts.append(f"{verb} by {node.decision.by} at {_when(node.decision.at)}")
    if node.message and node.phase != "Succeeded":
        parts.append(f"[italic]{node.message}[/italic]")
    return "  ".join(parts)


def _tree(run: FlowRun) -> Tree:
    status = run.status
    now = status.finished_at or time.time()
    title = (
        f"[bold]{run.metadata.name}[/bold]  {run.spec.flow}  "
        f"[{PHASE_STYLE.get(status.phase, '')}]{status.phase}[/]  "
        f"{status.progress or progress(status)}  started {_when(status.started_at)}"
    )
    tree = Tree(title)
    children: dict[str, list[NodeStatus]] = {}
    for node in status.nodes.values():
        if node.parent is not None:
            children.setdefault(node.parent, []).append(node)
    for siblings in children.values():
        siblings.sort(key=lambda n: (n.section != "steps", n.started_at or 1e18, n.index or 0))

    def add(branch: Tree, parent: str) -> None:
        for node in children.get(parent, []):
            add(branch.add(_label(node, now)), node.path)

    add(tree, "")
    if status.message:
        tree.add(f"[italic]{status.message}[/italic]")
    return tree

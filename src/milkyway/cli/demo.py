"""``milkyway demo``: the whole system in one process, from nothing to Ready.

Simulated clusters (a management cluster and member clusters in two regions), their
registration as ``Cluster`` resources with kubeconfig Secrets, the operator, ``milkyway
server`` with a throw-away LDAP directory of demo people (:mod:`milkyway.cli.demo_server`),
and two Applications — the talk's ``stream1`` and the multi-region ``orders`` — with live
progress until everything is Ready. Every step goes through the Kubernetes API exactly
as it would against real clusters; only the clusters are simulated.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Secret
from lightkube.resources.storage_v1 import StorageClass
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from milkyway.cli.app_commands import (
    app_flow_runs,
    applications_table,
    apply_documents,
    flow_summary,
)
from milkyway.cli.demo_directory import DirectoryError
from milkyway.cli.demo_lock import DemoRunning, claim_directory
from milkyway.cli.demo_notify import start_notifications
from milkyway.cli.demo_processes import demo_images, real_members_table, simulated_summary
from milkyway.cli.demo_server import DemoApi, DemoApiError, sign_in_text, start_api
from milkyway.kube.resources import APPLICATION, CLUSTER
from milkyway.model.base import GROUP, VERSION
from milkyway.operator.manager import Operator, OperatorSettings
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.controllers.volumes import PROVISIONER_LOCAL

SYSTEM_NAMESPACE = "milkyway-system"
MANAGEMENT = "mgmt"
DEFAULT_KUBECONFIG = Path.home() / ".milkyway" / "sim" / "kubeconfig"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@dataclass(frozen=True)
class MemberCluster:
    """One simulated member cluster: its name (= kubeconfig context = Cluster name)."""

    name: str
    region: str
    zone: str


DEMO_MEMBERS: tuple[MemberCluster, ...] = (
    MemberCluster("na-phx", "NA", "phx"),
    MemberCluster("na-slc", "NA", "slc"),
    MemberCluster("eu-ams", "EU", "ams"),
    MemberCluster("eu-fra", "EU", "fra"),
)


@dataclass
class DemoOptions:
    kubeconfig: Path = DEFAULT_KUBECONFIG
    data_dir: Path | None = None
    nodes: int = 8
    exit_when_ready: bool = False
    timeout: float = 600.0
    fast: bool = False
    """Fast simulator timings (tests, scripts) instead of realistic ones."""
    members: Sequence[MemberCluster] = DEMO_MEMBERS
    examples: Sequence[Path] = field(
        default_factory=lambda: [
            EXAMPLES / "stream1.yaml",
            EXAMPLES / "multi-region.yaml",
            EXAMPLES / "etcd.yaml",
        ]
    )
    processes: bool = True
    """Run ZooKeeper and etcd members as real processes (the rest stays simulated)."""
    api: bool = True
    """Start ``milkyway server`` and its LDAP directory (RBAC on the management cluster)."""
    api_port: int = 0
    """The server's port (0: any free one)."""


class DemoError(Exception):
    """The demo cannot go on; the message says why."""


class DemoTimeout(DemoError):
    """Not everything became Ready in time; the message says what is missing."""


def member_kubeconfig(full: Mapping[str, Any], context: str) -> dict[str, Any]:
    """The part of a kubeconfig that reaches one context, with that context current."""
    ctx = next(c for c in full["contexts"] if c["name"] == context)
    cluster = ctx["context"]["cluster"]
    user = ctx["context"]["user"]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [c for c in full["clusters"] if c["name"] == cluster],
        "users": [u for u in full["users"] if u["name"] == user],
        "contexts": [ctx],
        "current-context": context,
    }


async def register_members(
    client: AsyncClient, kubeconfig_text: str, members: Sequence[MemberCluster]
) -> None:
    """A kubeconfig Secret and a ``Cluster`` per member cluster (server-side apply, so a
    restarted demo on a kept ``--data-dir`` converges instead of failing)."""
    full = yaml.safe_load(kubeconfig_text)
    with contextlib.suppress(ApiError):
        await client.create(Namespace(metadata=ObjectMeta(name=SYSTEM_NAMESPACE)))
    for member in members:
        secret_name = f"{member.name}-kubeconfig"
        text = yaml.safe_dump(member_kubeconfig(full, member.name))
        await client.apply(
            Secret(
                metadata=ObjectMeta(name=secret_name, namespace=SYSTEM_NAMESPACE),
                data={"kubeconfig": base64.b64encode(text.encode()).decode()},
            ),
            field_manager="milkyway-demo",
            force=True,
        )
        await client.apply(
            CLUSTER(
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Cluster",
                    "metadata": {"name": member.name},
                    "spec": {
                        "region": member.region,
                        "zone": member.zone,
                        "kubeconfigSecretRef": {
                            "name": secret_name,
                            "namespace": SYSTEM_NAMESPACE,
                        },
                    },
                }
            ),
            field_manager="milkyway-demo",
            force=True,
        )


def storage_classes() -> list[dict[str, Any]]:
    """What a member cluster's admin would provide beyond the simulator's ``standard`` and
    ``local`` classes: ``fast-ssd`` (node-local disks), which the multi-region example asks
    for."""
    return [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "fast-ssd"},
            "provisioner": PROVISIONER_LOCAL,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    ]


async def prepare_members(kubeconfig: Path, members: Sequence[MemberCluster]) -> None:
    """Create the storage classes of :func:`storage_classes` in every member cluster."""
    config = KubeConfig.from_file(kubeconfig)
    for member in members:
        client = AsyncClient(config.get(member.name))
        try:
            for item in storage_classes():
                await client.apply(
                    StorageClass.from_dict(item), field_manager="milkyway-demo", force=True
                )
        finally:
            await client.close()


def is_ready(obj: Mapping[str, Any]) -> bool:
    """Ready condition True for the current generation, every member Ready."""
    meta, status = obj.get("metadata", {}), obj.get("status") or {}
    if status.get("observedGeneration") != meta.get("generation"):
        return False
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    return bool(ready and ready.get("status") == "True")


def not_ready_reason(obj: Mapping[str, Any]) -> str:
    meta, status = obj.get("metadata", {}), obj.get("status") or {}
    name = f"{meta.get('namespace')}/{meta.get('name')}"
    if not status:
        return f"{name}: no status yet (is the operator running?)"
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    detail = (
        f"{ready.get('reason') or ''} {ready.get('message') or ''}".strip()
        if ready
        else "no Ready condition"
    )
    return f"{name}: phase {status.get('phase') or '-'}, {detail}"


async def progress_view(client: AsyncClient, names: Sequence[tuple[str, str]]) -> tuple[Any, bool]:
    """A table of the demo's Applications and their running flows; and whether all are
    Ready."""
    items = []
    for namespace, name in names:
        try:
            items.append(dict((await client.get(APPLICATION, name, namespace=namespace)).to_dict()))
        except ApiError:
            continue
    flows = Table(box=None, pad_edge=False, title="Running flows", title_justify="left")
    for column in ("APPLICATION", "FLOWRUN", "FLOW", "PHASE", "PROGRESS", "NOW"):
        flows.add_column(column, overflow="fold")
    for namespace, name in names:
        for run in await app_flow_runs(client, namespace, name):
            phase, done, now = flow_summary(run)
            if phase in ("Succeeded", "Failed", "Cancelled"):
                continue
            flows.add_row(
                name,
                run["metadata"]["name"],
                run.get("spec", {}).get("flow", ""),
                phase,
                done,
                now or "-",
            )
    all_ready = len(items) == len(names) and all(
        is_ready(i) and not (i.get("status") or {}).get("currentFlow") for i in items
    )
    view = Group(applications_table(items, all_namespaces=True), Text(""), flows)
    return view, all_ready


async def wait_until_ready(
    client: AsyncClient,
    names: Sequence[tuple[str, str]],
    limit: float,
    console: Console,
) -> None:
    """Show live progress until every Application is Ready; :class:`DemoTimeout` after
    ``limit`` seconds naming what is not."""
    deadline = time.monotonic() + limit
    view, ready = await progress_view(client, names)
    with Live(view, console=console, refresh_per_second=4, transient=False) as live:
        while not ready:
            if time.monotonic() > deadline:
                reasons = []
                for namespace, name in names:
                    try:
                        obj = (await client.get(APPLICATION, name, namespace=namespace)).to_dict()
                    except ApiError:
                        reasons.append(f"{namespace}/{name}: not found")
                        continue
                    if not is_ready(obj):
                        reasons.append(not_ready_reason(obj))
                raise DemoTimeout(f"not Ready after {limit:.0f}s: " + "; ".join(reasons))
            await asyncio.sleep(0.5)
            view, ready = await progress_view(client, names)
            live.update(view)


def next_steps(kubeconfig: Path) -> str:
    return (
        "\nEverything is Ready. Try, in another terminal "
        f"(the kubeconfig's current context is {MANAGEMENT}):\n\n"
        f"  export KUBECONFIG={kubeconfig}\n"
        "  kubectl get applications -A\n"
        "  kubectl --context na-phx get statefulsets,pods -n milkyway\n"
        "  milkyway get -A\n"
        "  milkyway describe stream1 -n milkyway\n"
        "  milkyway scale stream1 kafka1 --zone phx --size 5 -n milkyway\n"
        "  milkyway set-param stream1 zookeeper1 tickTime=3000 -n milkyway\n"
        "  milkyway restart orders kafka -n streaming\n"
        "  milkyway replace stream1 stream1-zookeeper1-phx-1 -n milkyway\n"
        "  milkyway flows stream1 -n milkyway --watch\n"
        "  milkyway sim fault kill-pod stream1-zookeeper1-phx-0 -c na-phx -n milkyway "
        f"--kubeconfig {kubeconfig}\n"
        f"  milkyway sim fault cut-off -c eu-ams --kubeconfig {kubeconfig}\n"
        "\nPress Ctrl-C to stop."
    )


def operator_log(kubeconfig: Path) -> Path:
    return kubeconfig.with_name("operator.log")


async def start_operator(
    stack: contextlib.AsyncExitStack, kubeconfig: Path, fast: bool
) -> asyncio.Task[None]:
    """The operator in this process, logging to a file next to the kubeconfig (the
    terminal shows the progress view); returns once it leads, CRDs installed."""
    handler = logging.FileHandler(operator_log(kubeconfig), mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logger = logging.getLogger("milkyway")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(
        lambda _, context: logger.warning("background task: %s", context.get("exception"))
    )
    # Leader election as in any deployment: an operator started beside the demo (against
    # its clusters) stands by instead of driving the same Applications. The lease is
    # renewed by the event loop the simulated clusters also run on, so it tolerates a
    # loop starved for longer than a dedicated operator process would be.
    settings = OperatorSettings(
        lease_duration=60.0,
        renew_deadline=45.0,
        heartbeat_interval=1.0 if fast else 5.0,
        engine_poll_interval=0.2 if fast else 1.0,
        # The simulated API servers share this process and churn reference cycles that a
        # frozen heap would keep until the next sweep, hours later.
        gc_freeze=False,
    )
    operator = Operator(kubeconfig, MANAGEMENT, settings)
    task = asyncio.create_task(operator.run_forever(), name="milkyway-operator")

    async def stop() -> None:
        if task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
    leading = asyncio.create_task(operator.wait_until_leading(120.0))
    await asyncio.wait({task, leading}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        leading.cancel()
        error = task.exception()
        raise DemoError(f"the operator stopped before it started leading: {error!r}")
    leading.result()
    return task


async def run_demo(options: DemoOptions, console: Console) -> int:
    """Run the demo; returns the process exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    names = [MANAGEMENT, *(m.name for m in options.members)]
    topology = {m.name: (m.region, m.zone) for m in options.members}
    config = ControlPlaneConfig.realistic()
    if options.fast:
        # Real servers starting together load the machine: a one-second node grace would
        # call a node dead whenever the event loop waits on the CPU for a moment.
        slack = {"heartbeat_interval": 1.0, "node_grace_period": 15.0} if options.processes else {}
        config = ControlPlaneConfig.fast(**slack)
    nodes: int | dict[str, Any] = options.nodes
    async with contextlib.AsyncExitStack() as stack:
        sim = await stack.enter_async_context(
            SimulatedClusters(
                names,
                data_dir=options.data_dir,
                kubeconfig_path=options.kubeconfig,
                rbac=options.api,
            )
        )
        control = await stack.enter_async_context(
            ControlledClusters(
                sim,
                nodes=nodes,
                config=config,
                topology=topology,
                images=demo_images() if options.processes else None,
            )
        )
        console.print(
            f"[bold]clusters[/bold] {', '.join(names)} "
            f"({options.nodes} nodes each); kubeconfig {sim.kubeconfig_path}"
        )
        client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get(MANAGEMENT))
        stack.push_async_callback(client.close)
        operator = await start_operator(stack, sim.kubeconfig_path, options.fast)
        console.print(f"[bold]operator[/bold] running (log: {operator_log(sim.kubeconfig_path)})")
        await prepare_members(sim.kubeconfig_path, options.members)
        await register_members(client, sim.kubeconfig_path.read_text(), options.members)
        console.print(f"[bold]registered[/bold] {len(options.members)} member clusters")
        notes = await start_notifications(
            stack, client, sim.kubeconfig_path, SYSTEM_NAMESPACE, ["milkyway", "streaming"]
        )
        console.print(f"[bold]notifications[/bold] {notes}")
        api: DemoApi | None = None
        if options.api:
            try:
                api = await start_api(
                    stack, client, sim.kubeconfig_path, MANAGEMENT, port=options.api_port
                )
            except (DirectoryError, DemoApiError) as exc:
                raise DemoError(str(exc)) from None
            console.print("[bold]api[/bold]", end=" ")
            console.print(sign_in_text(api), markup=False, highlight=False, soft_wrap=True)
        targets: list[tuple[str, str]] = []
        for path in options.examples:
            for kind, key, outcome in await apply_documents(client, path.read_text(), "default"):
                console.print(f"[bold]applied[/bold] {kind.lower()}/{key} {outcome}")
                if kind == "Application":
                    namespace, _, name = key.partition("/")
                    targets.append((namespace, name))
        waiter = asyncio.create_task(wait_until_ready(client, targets, options.timeout, console))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait(
            {waiter, stopper, operator}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in (waiter, stopper):
            if task not in done:
                task.cancel()
        if operator in done:
            error = None if operator.cancelled() else operator.exception()
            console.print(f"[red]the operator stopped:[/red] {error!r}")
            return 1
        if stopper in done:
            console.print("stopped")
            return 130
        try:
            waiter.result()
        except DemoTimeout as exc:
            console.print(f"[red]{exc}[/red]")
            return 1
        if options.processes:
            console.print(real_members_table(control.runtimes))
            pods = [p for c in control.planes.values() for p in c.pods.objects.values()]
            console.print(simulated_summary(control.runtimes, pods))
        if options.exit_when_ready:
            console.print("\n[green]everything is Ready[/green]")
            return 0
        console.print(next_steps(sim.kubeconfig_path))
        if api is not None:
            console.print("\nThrough the server, as a demo person:", markup=False)
            console.print(sign_in_text(api), markup=False, highlight=False, soft_wrap=True)
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({stopper, operator}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        console.print("stopped")
        return 0
    return 0


def demo(
    kubeconfig: Annotated[
        Path, typer.Option(help="Where to write the kubeconfig (one context per cluster).")
    ] = DEFAULT_KUBECONFIG,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep objects here (SQLite) across restarts.")
    ] = None,
    nodes: Annotated[int, typer.Option(help="Simulated nodes per cluster.")] = 8,
    exit_when_ready: Annotated[
        bool, typer.Option(help="Exit 0 once everything is Ready (non-zero on timeout).")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for Ready before giving up.")
    ] = 600.0,
    fast: Annotated[
        bool, typer.Option(help="Fast simulator timings instead of realistic ones.")
    ] = False,
    processes: Annotated[
        bool,
        typer.Option(
            help="Run ZooKeeper and etcd members as real local processes "
            "(--no-processes: every pod simulated)."
        ),
    ] = True,
    api: Annotated[
        bool,
        typer.Option(
            help="Start milkyway server with a throw-away LDAP directory of demo people "
            "(--no-api: clusters and operator only)."
        ),
    ] = True,
    api_port: Annotated[
        int, typer.Option(min=0, max=65535, help="The server's port (0: any free one).")
    ] = 0,
) -> None:
    """Simulated clusters in two regions, the operator, the server (LDAP sign-in), and
    two Applications until Ready."""
    options = DemoOptions(
        kubeconfig=kubeconfig,
        data_dir=data_dir,
        nodes=nodes,
        exit_when_ready=exit_when_ready,
        timeout=timeout,
        fast=fast,
        processes=processes,
        api=api,
        api_port=api_port,
    )
    console = Console()
    try:
        with claim_directory(options.kubeconfig.expanduser().resolve().parent):
            code = asyncio.run(run_demo(options, console))
    except (DemoError, DemoRunning) as exc:
        console.print(f"[red]error:[/red] {exc}")
        code = 1
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)

"""``milkyway status``, ``milkyway logs`` and ``milkyway action``: the member pods' agents,
reached through each member cluster's API server (``pods/proxy``).

``status`` asks every member's agent for its health and findings; ``logs`` reads one of
the log files the component's type declares; ``action`` runs a declared admin action with
a token signed for that pod, that action and the kubeconfig's user — so it works only for
people allowed to read the namespace's agent signing key.
"""

from __future__ import annotations

import asyncio
from typing import Any

import typer
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from rich.table import Table
from rich.text import Text

from milkyway.cli.app_commands import CommandError, Target, _run, console, get_application
from milkyway.kube.agent_client import AgentClient, AgentError
from milkyway.kube.clients import load_kubeconfig
from milkyway.kube.members import (
    ClusterResource,
    MemberLookupError,
    MemberPod,
    cluster_client,
    member_pods,
)
from milkyway.model.application import Application
from milkyway.operator.reconciler import place_zones

app = typer.Typer()

KUBECONFIG = typer.Option(None, "--kubeconfig", envvar="KUBECONFIG", help="kubeconfig path")
CONTEXT = typer.Option(None, "--context", help="context of the management cluster")
NAMESPACE = typer.Option(None, "--namespace", "-n", help="namespace of the Application")

_HEALTH_STYLE = {"Healthy": "green", "Degraded": "yellow", "Unhealthy": "red", "Unknown": "dim"}


async def _members(
    mgmt: AsyncClient, name: str, namespace: str, component: str | None
) -> tuple[list[MemberPod], dict[str, AsyncClient]]:
    obj = await get_application(mgmt, name, namespace)
    app_model = Application.model_validate(obj)
    if component is not None and component not in {c.name for c in app_model.spec.components}:
        known = ", ".join(c.name for c in app_model.spec.components)
        raise CommandError(f"{name} has no component {component!r} (components: {known})")
    clusters = [c async for c in mgmt.list(ClusterResource)]
    placement = place_zones(app_model, [dict(c) for c in clusters])
    clients: dict[str, AsyncClient] = {}
    pods: list[MemberPod] = []
    for zone, cluster in sorted(placement.clusters.items()):
        if cluster not in clients:
            try:
                clients[cluster] = await cluster_client(mgmt, cluster)
            except MemberLookupError as error:
                raise CommandError(str(error)) from None
        pods.extend(await member_pods(clients[cluster], namespace, name, zone, cluster, component))
    return pods, clients


def _pick(pods: list[MemberPod], member: str) -> MemberPod:
    for pod in pods:
        if member in (pod.pod, pod.member):
            return pod
    names = ", ".join(p.pod for p in pods) or "none"
    raise CommandError(f"no member {member!r}; members: {names}")


async def _close(clients: dict[str, AsyncClient]) -> None:
    for client in clients.values():
        await client.close()


def _requester(target: Target) -> str:
    config = load_kubeconfig(target.kubeconfig)
    name = target.context or config.current_context
    context = config.contexts.get(name) if name else None
    user = getattr(context, "user", None) if context else None
    if not user:
        raise CommandError("the kubeconfig context names no user; an action needs a requester")
    return str(user)


@app.command("status")
def status(
    name: str = typer.Argument(..., help="Application name"),
    component: str | None = typer.Option(None, "--component", "-c", help="only this component"),
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = NAMESPACE,
) -> None:
    """Health of every member as its sidecar agent reports it, with each finding."""
    target = Target(kubeconfig, context, namespace)

    async def work(mgmt: AsyncClient) -> Table:
        pods, clients = await _members(mgmt, name, target.namespace, component)
        try:
            reports = await asyncio.gather(
                *(AgentClient(clients[p.cluster], p.namespace, p.pod).status() for p in pods),
                return_exceptions=True,
            )
        finally:
            await _close(clients)
        table = Table(title=f"{target.namespace}/{name}: members as their agents see them")
        for column in ("COMPONENT", "ZONE", "CLUSTER", "POD", "HEALTH", "FINDINGS"):
            table.add_column(column)
        for pod, report in zip(pods, reports, strict=True):
            if isinstance(report, BaseException):
                health, findings = "Unknown", f"agent not reachable: {report}"
            else:
                health = str(report.get("health", "Unknown"))
                findings = "; ".join(_findings(report)) or "all checks pass"
            table.add_row(
                pod.component,
                pod.zone,
                pod.cluster,
                pod.pod,
                Text(health, style=_HEALTH_STYLE.get(health, "")),
                findings,
            )
        return table

    console.print(_run(target, work))


def _findings(report: dict[str, Any]) -> list[str]:
    found = [f"{c['check']}: {c['message']}" for c in report.get("checks", [])]
    found += [
        f"volume {v['volume']} {v['level']}: {v['message']}"
        for v in report.get("volumes", [])
        if v.get("level") != "ok"
    ]
    return found


@app.command("logs")
def logs(
    name: str = typer.Argument(..., help="Application name"),
    component: str = typer.Argument(..., help="component name"),
    member: str = typer.Option(..., "--member", "-m", help="pod name or member id"),
    file: str | None = typer.Option(None, "--file", help="declared log (SOURCE or SOURCE/FILE)"),
    tail: int | None = typer.Option(None, "--tail", min=0, help="last N lines"),
    since: str | None = typer.Option(None, "--since", help="RFC 3339 time or 10s/5m/2h"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new lines"),
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = NAMESPACE,
) -> None:
    """A member's declared log files through its agent (without --file: the list)."""
    target = Target(kubeconfig, context, namespace)

    async def work(mgmt: AsyncClient) -> None:
        pods, clients = await _members(mgmt, name, target.namespace, component)
        try:
            pod = _pick(pods, member)
            agent = AgentClient(clients[pod.cluster], pod.namespace, pod.pod)
            if file is None:
                listing = await agent._json("GET", "/v1/logs")
                for item in listing.get("files", []):
                    typer.echo(f"{item['file']}\t{item['size']}")
                return
            async for line in agent.log_lines(file, tail=tail, since=since, follow=follow):
                typer.echo(line)
        except AgentError as error:
            raise CommandError(f"{member}: {error}") from None
        finally:
            await _close(clients)

    _run(target, work)


@app.command("action")
def action(
    name: str = typer.Argument(..., help="Application name"),
    component: str = typer.Argument(..., help="component name"),
    action_name: str = typer.Argument(..., metavar="ACTION", help="declared action"),
    member: str = typer.Option(..., "--member", "-m", help="pod name or member id"),
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = NAMESPACE,
) -> None:
    """Run a declared admin action on one member, as the kubeconfig's user."""
    target = Target(kubeconfig, context, namespace)
    requester = _requester(target)

    async def work(mgmt: AsyncClient) -> dict[str, Any]:
        pods, clients = await _members(mgmt, name, target.namespace, component)
        try:
            pod = _pick(pods, member)
            client = AgentClient(clients[pod.cluster], pod.namespace, pod.pod)
            return await client.run_action(action_name, requester)
        except AgentError as error:
            raise CommandError(f"{member}: {error}") from None
        except ApiError as error:
            raise CommandError(
                f"cannot sign the action token ({error.status.message}); running actions needs "
                "read access to the Secret milkyway-agent-signing in the member namespace"
            ) from None
        finally:
            await _close(clients)

    report = _run(target, work)
    typer.echo(report.get("output", "").rstrip("\n"))
    if not report.get("ok"):
        raise typer.Exit(1)

"""``milkyway apply/get/describe/scale/upgrade/set-param/restart/replace/delete/flows``:
kubectl-like verbs on Applications in the management cluster.

Every command that changes an Application validates the result locally first (the same
checks as ``milkyway validate``, against the built-in component types plus the
ComponentTypes in the cluster) and sends nothing when any check fails; the operator then
closes the gap with a flow. The Kubernetes work lives in small async functions taking a
lightkube client, so tests drive them against simulated clusters directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from lightkube import ApiError, AsyncClient
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event, Namespace
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from milkyway.cli.model_commands import (
    PolicyOption,
    fail_unreadable,
    read_manifest,
    read_security_policy,
)
from milkyway.cli.unreachable import print_unreachable
from milkyway.components import ComponentTypeRegistry
from milkyway.components.registry import registry_from_resources
from milkyway.kube.applications import (
    ApplicationNotFound,
    KeepsChanging,
    component_types,
    edit_application,
    get_application,
    request_replace,
    request_restart,
)
from milkyway.kube.applications import get_or_none as _get_or_none
from milkyway.kube.clients import KubeconfigError, client_from_kubeconfig, load_kubeconfig
from milkyway.kube.errors import TRANSPORT_ERRORS
from milkyway.kube.labels import APPLICATION as APP_LABEL
from milkyway.kube.labels import COMPONENT as COMPONENT_LABEL
from milkyway.kube.resources import APPLICATION, FLOW, FLOWRUN
from milkyway.model.base import API_VERSION, GROUP, VERSION
from milkyway.model.edits import (
    EditError,
    SpecEdit,
    params_edit,
    parse_assignments,
    scale_edit,
    upgrade_edit,
)
from milkyway.model.errors import DocumentUnreadable, FieldError, ValidationFailed, shown_value
from milkyway.model.load import load_resolved
from milkyway.model.security_policy import DEFAULT_POLICY, SecurityPolicy, security_errors
from milkyway.model.source import load_documents
from milkyway.operator.flows_catalog import builtin_flow_names

DONE = ("Succeeded", "Failed", "Cancelled")

app = typer.Typer(no_args_is_help=True, add_completion=False)
console = Console()
T = TypeVar("T")

KubeconfigOpt = Annotated[
    str | None,
    typer.Option("--kubeconfig", envvar="KUBECONFIG", help="kubeconfig path (like kubectl)."),
]
ContextOpt = Annotated[
    str | None, typer.Option("--context", help="kubeconfig context (default: current).")
]
NamespaceOpt = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="Namespace (default: the context's, else default)."),
]
ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="MILKYWAY_SERVER",
        help="Act through this Milkyway server as the signed-in user (default: the server "
        "of the last milkyway login; '' for the cluster directly).",
    ),
]


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


class Target:
    """The management cluster a command talks to: kubeconfig, context and namespace."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None):
        self.kubeconfig = (kubeconfig or str(Path("~/.kube/config").expanduser())).split(
            os.pathsep
        )[0]
        self.context = context
        self.namespace = namespace or self._context_namespace() or "default"

    def _context_namespace(self) -> str | None:
        try:
            config = load_kubeconfig(self.kubeconfig)
        except (KubeconfigError, OSError, ValueError):
            return None
        name = self.context or config.current_context
        context = config.contexts.get(name) if name else None
        return getattr(context, "namespace", None) if context else None

    def client(self) -> AsyncClient:
        return client_from_kubeconfig(self.kubeconfig, self.context, namespace=self.namespace)


def _run(
    target: Target, work: Callable[[AsyncClient], Awaitable[T]], file: Path | None = None
) -> T:
    """Run ``work`` with a client; Kubernetes and user errors become one line and exit 1.

    ``file``: the manifest ``work`` reads, named when it cannot be read as a document."""

    async def main() -> T:
        client = target.client()
        try:
            return await work(client)
        finally:
            await client.close()

    where = f"{file}: " if file else ""
    try:
        return asyncio.run(main())
    except DocumentUnreadable as exc:
        fail_unreadable(exc, file or "-f")
    except ValidationFailed as exc:
        print_errors(exc.errors, f"{file}: nothing was changed" if file else "nothing was changed")
        raise typer.Exit(1) from None
    except (CommandError, KubeconfigError, EditError, ApplicationNotFound, KeepsChanging) as exc:
        console.print(f"[red]error:[/red] {escape(f'{where}{exc}')}", soft_wrap=True)
        raise typer.Exit(1) from None
    except ApiError as exc:
        message = exc.status.message or str(exc)
        console.print(f"[red]error:[/red] {escape(f'{where}{message}')}", soft_wrap=True)
        raise typer.Exit(1) from None
    except TRANSPORT_ERRORS as exc:
        print_unreachable(exc)
        raise typer.Exit(1) from None


def print_errors(errors: list[FieldError], footer: str) -> None:
    """Every problem as a table row: field, value, problem, fix."""
    out = Console(stderr=True, width=max(Console(stderr=True).width, 140))
    table = Table(title=Text(f"{len(errors)} problem(s); {footer}"), show_lines=True)
    for column in ("field", "value", "problem", "fix"):
        table.add_column(column, overflow="fold")
    for error in errors:
        where = error.path or "<document>"
        if error.line:
            where += f" (line {error.line})"
        table.add_row(
            *(Text(cell) for cell in (where, shown_value(error.value), error.message, error.fix))
        )
    out.print(table)


# --- reading and validating ---------------------------------------------------------------


def _types_note() -> None:
    Console(stderr=True).print(
        "[yellow]note:[/yellow] you may not list ComponentTypes (cluster-scoped); "
        "validating against the built-in types only (the operator validates "
        "against every type)"
    )


async def flow_names(client: AsyncClient, namespace: str) -> frozenset[str]:
    """The built-in Flows and those stored in the cluster (in any namespace, or only in
    ``namespace`` for a caller whose rights end there)."""
    try:
        stored = {item.metadata.name async for item in client.list(FLOW, namespace="*")}
    except ApiError as exc:
        if exc.status.code == 404:
            return builtin_flow_names()
        if exc.status.code != 403:
            raise
        try:
            stored = {item.metadata.name async for item in client.list(FLOW, namespace=namespace)}
        except ApiError as inner:
            if inner.status.code not in (403, 404):
                raise
            return builtin_flow_names()
    return builtin_flow_names() | {name for name in stored if name}


def split_documents(text: str) -> list[str]:
    """The YAML documents of ``text`` as separate texts, each padded with blank lines so
    that errors name the line of the whole file."""
    parts: list[str] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(keepends=True)):
        if line.rstrip() == "---" or line.startswith("--- "):
            parts.append("\n" * start + "".join(current))
            current, start = [], number + 1
        else:
            current.append(line)
    parts.append("\n" * start + "".join(current))
    return [part for part in parts if part.strip() and _load(part) is not None]


def _load(text: str) -> Any:
    """The one document of ``text`` (``None`` when empty), or why it cannot be read."""
    try:
        documents = load_documents(text)
    except DocumentUnreadable as exc:
        return exc
    return documents[0] if documents else None


def validate_documents(
    texts: Iterable[str],
    types: ComponentTypeRegistry,
    namespace: str,
    flows: AbstractSet[str] | None = None,
    policy: SecurityPolicy = DEFAULT_POLICY,
) -> list[dict[str, Any]]:
    """Parsed documents with the namespace filled in; every Application validated.

    ``flows``: the Flows that exist (the built-in ones when not given); those of the file
    are added. Raises :class:`ValidationFailed` with the problems of every document at
    once."""
    texts = list(texts)
    documents: list[dict[str, Any]] = []
    errors: list[FieldError] = []
    in_file = [_load(t) for t in texts]
    known_flows = set(builtin_flow_names() if flows is None else flows) | {
        str((d.get("metadata") or {}).get("name"))
        for d in in_file
        if isinstance(d, dict) and d.get("kind") == "Flow"
    }
    types = registry_from_resources(
        [d for d in in_file if isinstance(d, dict) and d.get("kind") == "ComponentType"],
        base=types,
    )
    for index, (text, data) in enumerate(zip(texts, in_file, strict=True)):
        where = f"document {index + 1}"
        if isinstance(data, DocumentUnreadable):
            raise data
        if not isinstance(data, dict) or data.get("apiVersion") != API_VERSION:
            kind = data.get("kind") if isinstance(data, dict) else None
            errors.append(
                FieldError(
                    where,
                    kind,
                    "not a Milkyway resource",
                    f"apply other objects with kubectl; here use apiVersion: {API_VERSION}",
                )
            )
            continue
        if data.get("kind") == "Application":
            try:
                load_resolved(text, types, known_flows, policy)
            except ValidationFailed as exc:
                prefix = f"{where}: " if len(texts) > 1 else ""
                errors.extend(
                    FieldError(prefix + e.path, e.value, e.message, e.fix, e.line)
                    for e in exc.errors
                )
                continue
        problem = _resource_problem(data)
        if problem is not None:
            errors.append(FieldError(f"{where}: {problem[0]}", problem[1], problem[2], problem[3]))
            continue
        if data.get("kind") == "ComponentType":
            unsafe = security_errors(types[data["metadata"]["name"]], policy)
            errors.extend(
                FieldError(f"{where}: {e.path}", e.value, e.message, e.fix) for e in unsafe
            )
            if unsafe:
                continue
        if data.get("kind") not in ("Cluster", "ComponentType"):
            data.setdefault("metadata", {}).setdefault("namespace", namespace)
        documents.append(data)
    if errors:
        raise ValidationFailed(errors)
    return documents


_APPLIED_KINDS = ("Application", "Cluster", "ComponentType", "Flow")


def _resource_problem(data: dict[str, Any]) -> tuple[str, Any, str, str] | None:
    """(path, value, problem, fix) when a Milkyway document cannot be applied as written:
    a kind ``apply`` does not handle, or metadata without a usable name or namespace."""
    kind = data.get("kind")
    if kind not in _APPLIED_KINDS:
        return ("kind", kind, "not a kind milkyway apply handles", f"use one of {_APPLIED_KINDS}")
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        return ("metadata", meta, "metadata must be a mapping", "give the resource metadata.name")
    if not isinstance(meta.get("name"), str) or not meta["name"]:
        return ("metadata.name", meta.get("name"), "a name is required", "set metadata.name")
    if "namespace" in meta and not isinstance(meta["namespace"], str):
        return (
            "metadata.namespace",
            meta["namespace"],
            "a namespace is a name",
            "set metadata.namespace to a namespace name or leave it out",
        )
    return None


async def apply_documents(
    client: AsyncClient,
    text: str,
    namespace: str,
    *,
    create_namespaces: bool = True,
    policy: SecurityPolicy = DEFAULT_POLICY,
) -> list[tuple[str, str, str]]:
    """Validate every document of ``text``, then server-side apply them in order.

    Returns (kind, namespace/name, "created"|"configured"|"unchanged") per document."""
    texts = split_documents(text)
    if not texts:
        raise CommandError("the file holds no document")
    documents = validate_documents(
        texts,
        await component_types(client, _types_note),
        namespace,
        await flow_names(client, namespace),
        policy,
    )
    namespaces = {d["metadata"]["namespace"] for d in documents if "namespace" in d["metadata"]}
    for name in sorted(namespaces):
        try:
            if await _get_or_none(client, Namespace, name) is not None:
                continue
        except ApiError as exc:
            if exc.status.code != 403:
                raise
            continue  # namespace rights only: applying into it tells whether it exists
        if not create_namespaces:
            raise CommandError(
                f"namespace {name!r} does not exist; create it (kubectl create namespace "
                f"{name}) or drop --no-create-namespace"
            )
        await client.create(Namespace(metadata=ObjectMeta(name=name)))
    results = []
    for data in documents:
        kind = data["kind"]
        plural = kind.lower() + "s"
        meta = data.get("metadata", {})
        name = meta.get("name", "")
        if kind in ("Cluster", "ComponentType"):
            resource = create_global_resource(GROUP, VERSION, kind, plural)
            key = name
            before = await _get_or_none(client, resource, name)
        else:
            resource = create_namespaced_resource(GROUP, VERSION, kind, plural)
            ns = meta["namespace"]
            key = f"{ns}/{name}"
            before = await _get_or_none(client, resource, name, ns)
        applied = await client.apply(
            resource(data),
            field_manager="milkyway-cli",
            force=True,  # type: ignore[call-arg]
        )
        if before is None:
            outcome = "created"
        elif before.metadata.resourceVersion == applied.metadata.resourceVersion:
            outcome = "unchanged"
        else:
            outcome = "configured"
        results.append((kind, key, outcome))
    return results


# --- changing the spec --------------------------------------------------------------------


# --- showing ------------------------------------------------------------------------------


def _age(timestamp: str | None, now: dt.datetime | None = None) -> str:
    if not timestamp:
        return "-"
    try:
        then = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    seconds = int(((now or dt.datetime.now(dt.UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "d" else 1):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _ready_counts(status: Mapping[str, Any]) -> tuple[int, int]:
    ready = desired = 0
    for component in (status.get("components") or {}).values():
        for zone in (component.get("zones") or {}).values():
            ready += int(zone.get("ready") or 0)
            desired += int(zone.get("desired") or 0)
    return ready, desired


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


PHASE_STYLE = {
    "Running": "green",
    "Succeeded": "green",
    "Provisioning": "cyan",
    "Updating": "cyan",
    "Deleting": "magenta",
    "Degraded": "yellow",
    "Pending": "dim",
    "Failed": "red",
}


def _phase(phase: str | None) -> Text:
    return Text(phase or "-", style=PHASE_STYLE.get(phase or "", ""))


def applications_table(items: list[dict[str, Any]], all_namespaces: bool) -> Table:
    table = Table(box=None, pad_edge=False)
    if all_namespaces:
        table.add_column("NAMESPACE")
    for column in ("NAME", "PHASE", "READY", "MEMBERS", "FLOW", "GENERATION", "AGE"):
        table.add_column(column)
    for item in items:
        meta, status = item.get("metadata", {}), item.get("status") or {}
        ready_members, desired_members = _ready_counts(status)
        condition = _condition(status, "Ready")
        generation = f"{status.get('observedGeneration', '-')}/{meta.get('generation', '-')}"
        row = [
            meta.get("name", ""),
            _phase(status.get("phase")),
            condition.get("status", "-") if condition else "-",
            f"{ready_members}/{desired_members}",
            status.get("currentFlow") or "-",
            generation,
            _age(meta.get("creationTimestamp")),
        ]
        if all_namespaces:
            row.insert(0, meta.get("namespace", ""))
        table.add_row(*row)
    return table


def _health(zone_status: Mapping[str, Any], desired: int, version: str | None) -> Text:
    if not zone_status:
        return Text("not observed", style="dim")
    ready = int(zone_status.get("ready") or 0)
    observed_version = zone_status.get("version")
    if ready < desired:
        return Text(f"{desired - ready} down", style="yellow")
    if ready > desired:
        return Text(f"{ready - desired} extra", style="cyan")
    if version and observed_version and observed_version != version:
        return Text("updating", style="cyan")
    return Text("healthy", style="green")


def components_table(obj: Mapping[str, Any]) -> Table:
    """Components x zones: desired size (spec), ready, version and health (status)."""
    status = obj.get("status") or {}
    table = Table(title="Components", title_justify="left", box=None, pad_edge=False)
    columns = ("COMPONENT", "REGION", "ZONE", "DESIRED", "READY", "UPDATED", "VERSION", "HEALTH")
    for column in columns:
        table.add_column(column)
    for item in obj.get("spec", {}).get("components", []):
        observed = ((status.get("components") or {}).get(item["name"]) or {}).get("zones") or {}
        for region in item.get("regions", []):
            for zone in region.get("zones", []):
                version = zone.get("version") or item.get("version")
                zone_status = observed.get(zone["name"]) or {}
                desired = int(zone.get("size", 0))
                shown_version = zone_status.get("version") or "-"
                if zone_status.get("version") and zone_status.get("version") != version:
                    shown_version = f"{zone_status['version']} -> {version}"
                table.add_row(
                    item["name"],
                    region.get("name", ""),
                    zone["name"],
                    str(desired),
                    str(zone_status.get("ready", "-")),
                    str(zone_status.get("updated", "-")),
                    shown_version,
                    _health(zone_status, desired, version),
                )
    return table


def conditions_table(status: Mapping[str, Any]) -> Table:
    table = Table(title="Conditions", title_justify="left", box=None, pad_edge=False)
    for column in ("TYPE", "STATUS", "REASON", "MESSAGE", "SINCE"):
        table.add_column(column, overflow="fold")
    for condition in status.get("conditions") or []:
        table.add_row(
            condition.get("type", ""),
            condition.get("status", ""),
            condition.get("reason") or "",
            Text(condition.get("message") or ""),
            _age(condition.get("lastTransitionTime")),
        )
    return table


def flow_summary(run: Mapping[str, Any]) -> tuple[str, str, str]:
    """(phase, done/total, what is running now) of a FlowRun as stored."""
    status = run.get("status") or {}
    nodes = status.get("nodes") or {}
    total = done = 0
    running: list[str] = []
    for node_id, node in nodes.items():
        if node.get("kind") in ("task", "approval") and node.get("role") != "gate":
            total += 1
            if node.get("phase") in ("Succeeded", "Failed", "Skipped", "Omitted", "Cancelled"):
                done += 1
            elif node.get("phase") in ("Running", "Retrying", "Waiting"):
                running.append(node.get("name") or node_id)
    return status.get("phase") or "Pending", f"{done}/{total}", ", ".join(running[:4])


def flows_table(runs: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("FLOWRUN", "FLOW", "COMPONENT", "PHASE", "PROGRESS", "NOW", "AGE"):
        table.add_column(column, overflow="fold")
    for run in runs:
        meta = run.get("metadata", {})
        phase, progress, now = flow_summary(run)
        table.add_row(
            meta.get("name", ""),
            (run.get("spec") or {}).get("flow", ""),
            (meta.get("labels") or {}).get(COMPONENT_LABEL, "-"),
            _phase(phase),
            progress,
            now or "-",
            _age(meta.get("creationTimestamp")),
        )
    return table


def events_table(events: list[dict[str, Any]], limit: int = 15) -> Table:
    table = Table(title="Events", title_justify="left", box=None, pad_edge=False)
    for column in ("AGE", "TYPE", "REASON", "MESSAGE"):
        table.add_column(column, overflow="fold")
    events = sorted(events, key=_event_time)[-limit:]
    for event in events:
        table.add_row(
            _age(_event_time(event) or None),
            event.get("type") or "",
            event.get("reason") or "",
            event.get("message") or "",
        )
    return table


def _event_time(event: Mapping[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


async def app_flow_runs(
    client: AsyncClient, namespace: str, name: str | None
) -> list[dict[str, Any]]:
    """The FlowRuns of one Application (or of every Application) in ``namespace``, oldest
    first; an Application's runs carry its name in the application label."""
    selector = {APP_LABEL: name} if name else {APP_LABEL: None}
    try:
        runs = [
            dict(r.to_dict())
            async for r in client.list(FLOWRUN, namespace=namespace, labels=selector)
        ]
    except ApiError as exc:
        if exc.status.code == 404:
            return []
        raise
    return sorted(runs, key=lambda r: r.get("metadata", {}).get("creationTimestamp") or "")


async def app_events(client: AsyncClient, namespace: str, name: str) -> list[dict[str, Any]]:
    events = [dict(e.to_dict()) async for e in client.list(Event, namespace=namespace)]
    return [
        e
        for e in events
        if (e.get("involvedObject") or {}).get("kind") == "Application"
        and (e.get("involvedObject") or {}).get("name") == name
    ]


async def describe_view(client: AsyncClient, name: str, namespace: str) -> Group:
    obj = await get_application(client, name, namespace)
    meta, status = obj.get("metadata", {}), obj.get("status") or {}
    header = Table.grid(padding=(0, 2))
    header.add_row("Name:", f"{meta.get('namespace')}/{meta.get('name')}")
    header.add_row("Phase:", _phase(status.get("phase")))
    header.add_row(
        "Generation:",
        f"{meta.get('generation', '-')} (observed {status.get('observedGeneration', '-')})",
    )
    ready, desired = _ready_counts(status)
    header.add_row("Members ready:", f"{ready}/{desired}")
    parts: list[Any] = [header, Text(""), components_table(obj), Text("")]
    if status.get("conditions"):
        parts += [conditions_table(status), Text("")]
    runs = await app_flow_runs(client, namespace, name)
    current = status.get("currentFlow")
    active = [r for r in runs if r["metadata"]["name"] == current] or [
        r for r in runs if (r.get("status") or {}).get("phase") not in DONE
    ]
    if active:
        parts += [Text("Current flow", style="bold"), flows_table(active), Text("")]
    elif runs:
        parts += [Text("Last flow", style="bold"), flows_table(runs[-1:]), Text("")]
    else:
        parts += [Text("Current flow: none"), Text("")]
    parts.append(events_table(await app_events(client, namespace, name)))
    return Group(*parts)


# --- commands -----------------------------------------------------------------------------


def _now() -> str:
    """A request's stamp: the next whole second. Creation times have whole seconds, so a
    member created just before the request is older than the stamp; the operator acts
    once the stamp has passed, so what it creates is not (see ``PlanningPass.not_yet``)."""
    after = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    return after.strftime("%Y-%m-%dT%H:%M:%SZ")


@app.command()
def apply(
    file: Annotated[
        Path, typer.Option("--file", "-f", help="Manifest (YAML, several documents allowed).")
    ],
    create_namespace: Annotated[
        bool,
        typer.Option(
            "--create-namespace/--no-create-namespace",
            help="Create missing namespaces.",
        ),
    ] = True,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    policy_file: PolicyOption = None,
) -> None:
    """Validate locally, then server-side apply (nothing is sent if anything is invalid)."""
    target = Target(kubeconfig, context, namespace)
    text = read_manifest(file)
    policy = read_security_policy(policy_file)
    for part in split_documents(text):
        if isinstance(unreadable := _load(part), DocumentUnreadable):
            fail_unreadable(unreadable, file)
    results = _run(
        target,
        lambda c: apply_documents(
            c, text, target.namespace, create_namespaces=create_namespace, policy=policy
        ),
        file,
    )
    for kind, key, outcome in results:
        console.print(f"{kind.lower()}/{key} {outcome}")


@app.command("get")
def get_cmd(
    name: Annotated[str | None, typer.Argument(help="Application name (all if omitted).")] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="List in every namespace.")
    ] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="table, yaml or json")] = "table",
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    server: ServerOpt = None,
) -> None:
    """List Applications with phase, readiness and the running flow."""
    if output not in ("table", "yaml", "json"):
        raise typer.BadParameter("use table, yaml or json", param_hint="--output")
    target = Target(kubeconfig, context, namespace)

    async def work(client: AsyncClient) -> list[dict[str, Any]]:
        if name:
            return [await get_application(client, name, target.namespace)]
        ns = None if all_namespaces else target.namespace
        items = client.list(APPLICATION, namespace=ns if ns else "*")
        return [dict(i.to_dict()) async for i in items]

    server = _server(server)
    if server:
        where = None if all_namespaces and not name else target.namespace
        items = _list_via_server(server, name, where)
    else:
        items = _run(target, work)
    if output == "json":
        typer.echo(json.dumps(items[0] if name else items, indent=2))
    elif output == "yaml":
        typer.echo(yaml.safe_dump_all(items, sort_keys=False), nl=False)
    elif not items:
        where = "any namespace" if all_namespaces else f"namespace {target.namespace}"
        console.print(f"No Applications in {where}.")
    else:
        console.print(applications_table(items, all_namespaces))


@app.command()
def describe(
    name: Annotated[str, typer.Argument(help="Application name.")],
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Components x zones with health, conditions, the current flow and recent Events."""
    target = Target(kubeconfig, context, namespace)
    console.print(_run(target, lambda c: describe_view(c, name, target.namespace)))


def _edit(target: Target, name: str, edit: SpecEdit) -> None:
    summary = _run(target, lambda c: edit_application(c, name, target.namespace, edit))
    console.print(f"application/{target.namespace}/{name}: {summary}")


def _server(given: str | None) -> str | None:
    """The server to act through: ``--server``, else the one signed in to last."""
    from milkyway.cli.server_commands import chosen_server

    return chosen_server(given)


def _list_via_server(server: str, name: str | None, namespace: str | None) -> list[dict[str, Any]]:
    """Applications as the server shows them to the signed-in user (every page)."""
    from milkyway.cli.server_commands import call_server

    if name:
        return [call_server(server, "GET", f"/namespaces/{namespace}/applications/{name}")]
    items: list[dict[str, Any]] = []
    query = f"?namespace={namespace}&limit=500" if namespace else "?limit=500"
    token = ""
    while True:
        page = call_server(server, "GET", "/applications" + query + token)
        items.extend(page.get("items") or [])
        if not page.get("continue"):
            return items
        token = "&continue=" + urllib.parse.quote(str(page["continue"]), safe="")


def _via_server(server: str, target: Target, name: str, action: str, body: Any) -> None:
    """The same change made through the server, which checks who you are and acts as you."""
    from milkyway.cli.server_commands import call_server

    path = f"/namespaces/{target.namespace}/applications/{name}"
    if action == "delete":
        answer = call_server(server, "DELETE", path)
    else:
        answer = call_server(server, "POST", f"{path}/{action}", body)
    console.print(answer["message"])


@app.command()
def scale(
    name: Annotated[str, typer.Argument(help="Application name.")],
    component: Annotated[str, typer.Argument(help="Component name.")],
    zone: Annotated[str, typer.Option("--zone", "-z", help="Zone to resize.")],
    size: Annotated[int, typer.Option("--size", help="New number of members in the zone.")],
    region: Annotated[
        str | None, typer.Option("--region", help="Region of a zone the component lacks yet.")
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    server: ServerOpt = None,
) -> None:
    """Set a component's size in one zone (the operator runs scale-out or scale-in)."""
    target = Target(kubeconfig, context, namespace)
    server = _server(server)
    if server:
        body = {"component": component, "zone": zone, "size": size, "region": region}
        return _via_server(server, target, name, "scale", body)
    _edit(target, name, scale_edit(component, zone, size, region))


@app.command()
def upgrade(
    name: Annotated[str, typer.Argument(help="Application name.")],
    component: Annotated[str, typer.Argument(help="Component name.")],
    version: Annotated[str, typer.Option("--version", help="Target version, e.g. 3.8.4.")],
    zone: Annotated[str | None, typer.Option("--zone", "-z", help="Only this zone.")] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    server: ServerOpt = None,
) -> None:
    """Change a component's version (the operator runs a rolling upgrade)."""
    target = Target(kubeconfig, context, namespace)
    server = _server(server)
    if server:
        body = {"component": component, "version": version, "zone": zone}
        return _via_server(server, target, name, "upgrade", body)
    _edit(target, name, upgrade_edit(component, version, zone))


@app.command("set-param")
def set_param(
    name: Annotated[str, typer.Argument(help="Application name.")],
    component: Annotated[str, typer.Argument(help="Component name.")],
    assignments: Annotated[
        list[str], typer.Argument(help="KEY=VALUE (VALUE is YAML) or KEY- to remove.")
    ],
    zone: Annotated[str | None, typer.Option("--zone", "-z", help="Only this zone.")] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    server: ServerOpt = None,
) -> None:
    """Change parameters (hot-reloaded when the type allows, else a rolling restart)."""
    target = Target(kubeconfig, context, namespace)
    try:
        values = parse_assignments(assignments)
    except EditError as exc:
        raise typer.BadParameter(str(exc), param_hint="KEY=VALUE") from None
    server = _server(server)
    if server:
        body = {"component": component, "params": values, "zone": zone}
        return _via_server(server, target, name, "set-param", body)
    _edit(target, name, params_edit(component, values, zone))


@app.command()
def restart(
    name: Annotated[str, typer.Argument(help="Application name.")],
    component: Annotated[str, typer.Argument(help="Component name.")],
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    server: ServerOpt = None,
) -> None:
    """Rolling restart of a component, within its disruption policy."""
    target = Target(kubeconfig, context, namespace)
    server = _server(server)
    if server:
        return _via_server(server, target, name, "restart", {"component": component})
    stamp = _now()

    async def work(client: AsyncClient) -> str:
        return await request_restart(client, name, target.namespace, component, stamp)

    console.print(_run(target, work))


@app.command()
def replace(
    name: Annotated[str, typer.Argument(help="Application name.")],
    member: Annotated[
        str, typer.Argument(help="Member (pod) name, e.g. stream1-zookeeper1-phx-2.")
    ],
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    server: ServerOpt = None,
) -> None:
    """Replace one member: a new pod on a new volume, with the same identity."""
    target = Target(kubeconfig, context, namespace)
    server = _server(server)
    if server:
        return _via_server(server, target, name, "replace", {"member": member})
    stamp = _now()
    console.print(_run(target, lambda c: request_replace(c, name, target.namespace, member, stamp)))


@app.command()
def delete(
    name: Annotated[str, typer.Argument(help="Application name.")],
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait until decommissioned.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 600,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    server: ServerOpt = None,
) -> None:
    """Delete an Application: the operator decommissions it in reverse dependency order."""
    target = Target(kubeconfig, context, namespace)
    server = _server(server)
    if server:
        if wait:
            raise typer.BadParameter(
                "--wait is not available with --server yet", param_hint="--wait"
            )
        return _via_server(server, target, name, "delete", None)

    async def work(client: AsyncClient) -> str:
        await get_application(client, name, target.namespace)
        await client.delete(APPLICATION, name, namespace=target.namespace)
        if not wait:
            return f"application/{target.namespace}/{name} deletion requested"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await _get_or_none(client, APPLICATION, name, target.namespace) is None:
                return f"application/{target.namespace}/{name} deleted"
            await asyncio.sleep(1)
        raise CommandError(
            f"application/{target.namespace}/{name} still exists after {timeout:.0f}s; "
            f"see `milkyway describe {name} -n {target.namespace}`"
        )

    console.print(_run(target, work))


@app.command()
def flows(
    name: Annotated[str | None, typer.Argument(help="Application name (all if omitted).")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(help="Refresh period with --watch.")] = 1.0,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """The FlowRuns of an Application (or of all), with their progress."""
    target = Target(kubeconfig, context, namespace)

    async def once(client: AsyncClient) -> Table:
        return flows_table(await app_flow_runs(client, target.namespace, name))

    if not watch:
        console.print(_run(target, once))
        return

    async def live(client: AsyncClient) -> None:
        with Live(await once(client), console=console, refresh_per_second=4) as view:
            while True:
                await asyncio.sleep(interval)
                view.update(await once(client))

    with contextlib.suppress(KeyboardInterrupt):
        _run(target, live)

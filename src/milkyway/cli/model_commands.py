"""``milkyway validate`` and ``milkyway render``: see what an Application means before
anything is created (like ``helm template``), entirely offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from pydantic import ValidationError as PydanticValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from milkyway.components import ComponentTypeRegistry, builtin_component_types
from milkyway.components.registry import component_type_from_resource
from milkyway.model.cluster import Cluster
from milkyway.model.errors import (
    DocumentUnreadable,
    FieldError,
    ValidationFailed,
    format_path,
    shown_value,
)
from milkyway.model.load import load_resolved
from milkyway.model.resolve import ResolvedApplication
from milkyway.model.security_policy import (
    DEFAULT_POLICY,
    SecurityPolicy,
    load_security_policy,
)
from milkyway.model.source import MAX_DOCUMENT_BYTES, decode_manifest, load_documents
from milkyway.operator.flows_catalog import builtin_flow_names
from milkyway.render import render_zone
from milkyway.render.output import dump_manifest
from milkyway.render.templating import RenderError

app = typer.Typer(no_args_is_help=True, add_completion=False)

FileOption = Annotated[
    Path, typer.Option("--file", "-f", help="Application manifest (YAML); '-' reads stdin.")
]
TypesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--component-types",
        "-t",
        help="YAML file of extra ComponentType (and Flow) resources (repeatable).",
    ),
]


def read_manifest(path: Path) -> str:
    """The manifest's text; an unreadable, oversized or non-UTF-8 file is one error line."""
    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1)
        else:
            with path.open("rb") as stream:
                data = stream.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="-f") from None
    try:
        return decode_manifest(data)
    except DocumentUnreadable as exc:
        fail_unreadable(exc, path)


def fail_unreadable(exc: DocumentUnreadable, path: Path | str) -> NoReturn:
    """Print ``FILE: line N: problem; fix: ...`` on stderr and exit 1."""
    typer.echo(f"error: {exc.one_line(path)}", err=True)
    raise typer.Exit(1)


def _documents(path: Path) -> list[dict[str, Any]]:
    try:
        return [doc for doc in load_documents(read_manifest(path)) if isinstance(doc, dict)]
    except DocumentUnreadable as exc:
        fail_unreadable(exc, path)


def _registry(paths: list[Path] | None) -> ComponentTypeRegistry:
    registry = builtin_component_types()
    for path in paths or []:
        registry = registry.with_types(
            component_type_from_resource(doc)
            for doc in _documents(path)
            if doc.get("kind") == "ComponentType"
        )
    return registry


PolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--security-policy",
        help="YAML of the operator's security policy: what ComponentTypes may ask beyond "
        "the default pod security.",
    ),
]


def read_security_policy(path: Path | None) -> SecurityPolicy:
    """The policy in ``path`` (the default, allowing nothing extra, when ``None``)."""
    if path is None:
        return DEFAULT_POLICY
    try:
        return load_security_policy(read_manifest(path))
    except ValidationFailed as exc:
        _print_errors(exc.errors, path)
        raise typer.Exit(1) from None


def _flow_names(paths: list[Path] | None) -> frozenset[str]:
    """The Flows a component may name offline: the built-in ones and those of ``-t`` files."""
    extra = {
        str((doc.get("metadata") or {}).get("name"))
        for path in paths or []
        for doc in _documents(path)
        if doc.get("kind") == "Flow"
    }
    return builtin_flow_names() | extra


def _print_errors(errors: list[FieldError], file: Path) -> None:
    console = Console(stderr=True, width=160)
    table = Table(title=Text(f"{file}: {len(errors)} problem(s)"), show_lines=True)
    for column in ("field", "line", "value", "problem", "fix"):
        table.add_column(column, overflow="fold")
    for error in errors:
        cells = (
            error.path or "<document>",
            str(error.line or ""),
            shown_value(error.value),
            error.message,
            error.fix,
        )
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)


def _resolve(
    file: Path, types: list[Path] | None, policy: SecurityPolicy = DEFAULT_POLICY
) -> ResolvedApplication:
    try:
        registry = _registry(types)
    except ValidationFailed as exc:
        _print_errors(exc.errors, Path("--component-types"))
        raise typer.Exit(1) from None
    try:
        return load_resolved(read_manifest(file), registry, _flow_names(types), policy)
    except DocumentUnreadable as exc:
        fail_unreadable(exc, file)
    except ValidationFailed as exc:
        _print_errors(exc.errors, file)
        raise typer.Exit(1) from None


@app.command()
def validate(
    file: FileOption,
    types: TypesOption = None,
    policy_file: PolicyOption = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
) -> None:
    """Check an Application: report every problem at once (exit code 1 if any)."""
    if output not in ("text", "json"):
        raise typer.BadParameter("use text or json", param_hint="--output")
    if output == "json":
        try:
            resolved = load_resolved(
                read_manifest(file),
                _registry(types),
                _flow_names(types),
                read_security_policy(policy_file),
            )
        except ValidationFailed as exc:
            errors = [{**e.to_dict(), "value": _json_value(e.value)} for e in exc.errors]
            typer.echo(json.dumps({"valid": False, "file": str(file), "errors": errors}))
            raise typer.Exit(1) from None
        typer.echo(json.dumps({"valid": True, **_summary(resolved)}, default=str))
        return
    resolved = _resolve(file, types, read_security_policy(policy_file))
    summary = _summary(resolved)
    typer.echo(f"{summary['application']}: valid")
    for item in summary["components"]:
        uses = ", ".join(f"{k} -> {v}" for k, v in item["uses"].items()) or "-"
        typer.echo(
            f"  {item['name']}: {item['type']} {item['version']} as {item['workload']}, "
            f"{item['size']} member(s), uses {uses}"
        )


def _json_value(value: Any) -> Any:
    """An error's value as JSON: plain values as they are, others (and huge ones) as the
    shortened text the table shows."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and len(value) <= 200:
        return value
    return shown_value(value)


def _summary(resolved: ResolvedApplication) -> dict[str, Any]:
    return {
        "application": f"{resolved.namespace}/{resolved.name}",
        "order": list(resolved.order),
        "components": [
            {
                "name": c.name,
                "type": c.type.name,
                "version": c.zones[0].version,
                "workload": c.workload,
                "size": c.size,
                "uses": dict(c.bindings),
            }
            for c in resolved.components.values()
        ],
    }


@app.command()
def render(
    file: FileOption,
    zone: Annotated[str | None, typer.Option("--zone", "-z", help="Only this zone.")] = None,
    cluster: Annotated[
        str | None, typer.Option("--cluster", "-c", help="Only the zones this Cluster serves.")
    ] = None,
    clusters_file: Annotated[
        Path | None,
        typer.Option("--clusters", help="YAML file of Cluster resources (for DNS and --cluster)."),
    ] = None,
    component: Annotated[
        str | None, typer.Option("--component", help="Only this component.")
    ] = None,
    types: TypesOption = None,
    policy_file: PolicyOption = None,
) -> None:
    """Print the Kubernetes manifests an Application renders to, per component and zone."""
    resolved = _resolve(file, types, read_security_policy(policy_file))
    clusters = _clusters(clusters_file)
    by_zone = {c.spec.zone: c for c in clusters.values()}
    zones = {z.name for c in resolved.components.values() for z in c.zones}
    if zone is not None and zone not in zones:
        raise typer.BadParameter(
            f"no zone {zone!r}; zones: {', '.join(sorted(zones))}", param_hint="--zone"
        )
    if cluster is not None and clusters and cluster not in clusters:
        raise typer.BadParameter(
            f"no Cluster {cluster!r} in {clusters_file}; known: {', '.join(sorted(clusters))}",
            param_hint="--cluster",
        )
    if component is not None and component not in resolved.components:
        raise typer.BadParameter(
            f"no component {component!r}; components: {', '.join(resolved.components)}",
            param_hint="--component",
        )
    documents: list[str] = []
    for name, item in resolved.components.items():
        if component is not None and name != component:
            continue
        for zone_spec in item.zones:
            target = zone_spec.cluster or (
                by_zone[zone_spec.name].metadata.name
                if zone_spec.name in by_zone
                else zone_spec.name
            )
            if zone is not None and zone_spec.name != zone:
                continue
            if cluster is not None and target != cluster:
                continue
            try:
                manifests = render_zone(
                    resolved, name, zone_spec.name, clusters.get(target), clusters=by_zone
                )
            except RenderError as exc:
                typer.echo(f"cannot render {name} in zone {zone_spec.name}: {exc}", err=True)
                raise typer.Exit(1) from None
            for manifest in manifests:
                header = (
                    f"# Source: {resolved.name}/{name} zone {zone_spec.name} cluster {target}\n"
                )
                documents.append(header + dump_manifest(manifest))
    typer.echo("---\n".join(documents), nl=False)


def _clusters(path: Path | None) -> dict[str, Cluster]:
    if path is None:
        return {}
    result: dict[str, Cluster] = {}
    for doc in _documents(path):
        if doc.get("kind") == "Cluster":
            try:
                item = Cluster.model_validate(doc)
            except PydanticValidationError as exc:
                problems = "; ".join(
                    f"{format_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()
                )
                raise typer.BadParameter(
                    f"invalid Cluster in {path}: {problems}", param_hint="--clusters"
                ) from None
            result[item.metadata.name] = item
    return result


@app.command("component-type")
def component_type(
    name: Annotated[str, typer.Argument(help="A built-in type: zookeeper, kafka, etcd, …")],
) -> None:
    """Print a built-in ComponentType as a resource (templates inline), to apply and edit."""
    types = builtin_component_types()
    if name not in types:
        known = ", ".join(types)
        raise typer.BadParameter(f"no built-in type {name!r}; built-in types: {known}")
    resource = types[name].model_dump(mode="json", by_alias=True, exclude_none=True)
    resource["metadata"] = {"name": name}
    resource.pop("status", None)
    typer.echo(yaml.safe_dump(resource, sort_keys=False), nl=False)

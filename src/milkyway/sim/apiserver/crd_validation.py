"""Checks of a ``CustomResourceDefinition`` beyond its built-in schema.

A CRD that passes becomes served at once, so whatever would break serving it is caught
here: the name must be ``<plural>.<group>``, names must be usable in URLs, exactly one
version is the storage version, every version's schema is structural, and printer
columns have a known type and a JSONPath that parses.
"""

from __future__ import annotations

from typing import Any

from milkyway.sim.apiserver import fielderrors as fe
from milkyway.sim.apiserver import jsonpath, naming
from milkyway.sim.apiserver.errors import ApiError, Cause
from milkyway.sim.apiserver.structural import StructuralSchema

_SCOPES = ("Cluster", "Namespaced")
_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
_COLUMN_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")


def validate_crd(crd: dict) -> list[Cause]:
    """Causes why ``crd`` cannot be served (empty when it can)."""
    meta = crd.get("metadata") if isinstance(crd.get("metadata"), dict) else {}
    spec = crd.get("spec") if isinstance(crd.get("spec"), dict) else {}
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    causes: list[Cause] = []
    group = spec.get("group")
    plural = names.get("plural")
    if not group:
        causes.append(fe.required("spec.group"))
    elif isinstance(group, str):
        causes.extend(fe.invalid("spec.group", group, p) for p in naming.dns1123_subdomain(group))
        if "." not in group:
            causes.append(
                fe.invalid("spec.group", group, "should be a domain with at least one dot")
            )
    if (
        isinstance(group, str)
        and isinstance(plural, str)
        and meta.get("name") != f"{plural}.{group}"
    ):
        causes.append(
            fe.invalid(
                "metadata.name", meta.get("name", ""), 'must be spec.names.plural+"."+spec.group'
            )
        )
    causes.extend(_names(names))
    scope = spec.get("scope")
    if not scope:
        causes.append(fe.required("spec.scope"))
    elif scope not in _SCOPES:
        causes.append(fe.not_supported("spec.scope", scope, _SCOPES))
    causes.extend(_versions(spec.get("versions")))
    return causes


def _names(names: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    for key in ("plural", "singular"):
        value = names.get(key)
        if not value:
            if key == "plural":
                causes.append(fe.required("spec.names.plural"))
            continue
        causes.extend(
            fe.invalid(f"spec.names.{key}", value, p) for p in naming.dns1123_label(value)
        )
    kind = names.get("kind")
    if not kind:
        causes.append(fe.required("spec.names.kind"))
    if kind and names.get("listKind") == kind:
        causes.append(
            fe.invalid("spec.names.listKind", kind, "kind and listKind must be different")
        )
    for i, short in enumerate(names.get("shortNames") or []):
        causes.extend(
            fe.invalid(f"spec.names.shortNames[{i}]", short, p) for p in naming.dns1123_label(short)
        )
    return causes


def _versions(versions: Any) -> list[Cause]:
    if not isinstance(versions, list) or not versions:
        return [
            fe.required("spec.versions", "must have exactly one version marked as storage version")
        ]
    causes: list[Cause] = []
    seen: set[str] = set()
    storage = 0
    for i, version in enumerate(versions):
        version = version if isinstance(version, dict) else {}
        path = f"spec.versions[{i}]"
        name = version.get("name")
        if not name:
            causes.append(fe.required(f"{path}.name"))
        elif name in seen:
            causes.append(fe.duplicate(f"{path}.name", name))
        else:
            seen.add(name)
            causes.extend(fe.invalid(f"{path}.name", name, p) for p in naming.dns1123_label(name))
        for flag in ("served", "storage"):
            if not isinstance(version.get(flag), bool):
                causes.append(fe.required(f"{path}.{flag}"))
        storage += version.get("storage") is True
        causes.extend(_schema(version.get("schema"), f"{path}.schema"))
        causes.extend(_subresources(version.get("subresources"), f"{path}.subresources"))
        causes.extend(
            _columns(version.get("additionalPrinterColumns"), f"{path}.additionalPrinterColumns")
        )
    if storage != 1:
        causes.append(
            fe.invalid(
                "spec.versions",
                [v.get("name") for v in versions if isinstance(v, dict)],
                "must have exactly one version marked as storage version",
            )
        )
    return causes


def _schema(schema: Any, path: str) -> list[Cause]:
    openapi = schema.get("openAPIV3Schema") if isinstance(schema, dict) else None
    if not isinstance(openapi, dict):
        return [fe.required(f"{path}.openAPIV3Schema", "schemas are required")]
    try:
        StructuralSchema(openapi, field_path=f"{path}.openAPIV3Schema")
    except ApiError as err:
        return list(err.causes)
    return []


def _subresources(subresources: Any, path: str) -> list[Cause]:
    scale = subresources.get("scale") if isinstance(subresources, dict) else None
    if not isinstance(scale, dict):
        return []
    causes: list[Cause] = []
    for key, prefix in (("specReplicasPath", ".spec."), ("statusReplicasPath", ".status.")):
        value = scale.get(key)
        if not value:
            causes.append(fe.required(f"{path}.scale.{key}"))
        elif not str(value).startswith(prefix):
            causes.append(
                fe.invalid(
                    f"{path}.scale.{key}", value, f"should be a json path under {prefix[:-1]}"
                )
            )
    return causes


def _columns(columns: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, column in enumerate(columns if isinstance(columns, list) else []):
        column = column if isinstance(column, dict) else {}
        field = f"{path}[{i}]"
        name = column.get("name")
        if not name:
            causes.append(fe.required(f"{field}.name"))
        elif name in seen:
            causes.append(fe.duplicate(f"{field}.name", name))
        else:
            seen.add(name)
        type_ = column.get("type")
        if not type_:
            causes.append(fe.required(f"{field}.type"))
        elif type_ not in _COLUMN_TYPES:
            causes.append(fe.not_supported(f"{field}.type", type_, _COLUMN_TYPES))
        fmt = column.get("format")
        if fmt and fmt not in _COLUMN_FORMATS:
            causes.append(fe.not_supported(f"{field}.format", fmt, _COLUMN_FORMATS))
        priority = column.get("priority")
        if isinstance(priority, int) and priority < 0:
            causes.append(
                fe.invalid(f"{field}.priority", priority, "must be greater than or equal to 0")
            )
        json_path = column.get("jsonPath")
        if not json_path:
            causes.append(fe.required(f"{field}.jsonPath"))
        else:
            try:
                jsonpath.parse(str(json_path))
            except ValueError as err:
                causes.append(fe.invalid(f"{field}.jsonPath", json_path, str(err)))
    return causes

"""Generate CustomResourceDefinitions from pydantic models.

The models are the single source of truth; the CRDs committed under ``deploy/crds/`` are
derived from them. The API server only accepts *structural* schemas (every field typed, no
``$ref``, no ``additionalProperties: false``, junctors without types except the
int-or-string form), so the JSON schema pydantic emits is rewritten into that dialect here.
Anything that has no structural equivalent raises :class:`CrdSchemaError` rather than
producing a CRD a real API server would reject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from milkyway.model.base import GROUP, VERSION

_KEPT_KEYS = {
    "description",
    "type",
    "format",
    "default",
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "properties",
    "additionalProperties",
    "nullable",
    "anyOf",
}
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


class CrdSchemaError(ValueError):
    """A model uses a construct that has no structural OpenAPI equivalent."""


@dataclass(frozen=True)
class PrinterColumn:
    """A column of ``kubectl get`` (``additionalPrinterColumns``)."""

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    description: str = ""
    priority: int = 0

    def to_wire(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


AGE_COLUMN = PrinterColumn("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class CrdInfo:
    """What a CRD needs beyond the schema: names, scope and ``kubectl get`` columns."""

    plural: str
    scope: Literal["Namespaced", "Cluster"] = "Namespaced"
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ("milkyway",)
    printer_columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)


def build_crd(model: type[BaseModel]) -> dict[str, Any]:
    """The ``apiextensions.k8s.io/v1`` CustomResourceDefinition of a resource model."""
    info: CrdInfo = model.crd  # type: ignore[attr-defined]
    kind_field = model.model_fields["kind"]
    kind = str(kind_field.default)
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.get("$defs", {})
    properties = schema["properties"]
    if "spec" not in properties:
        raise CrdSchemaError(f"{model.__name__} has no spec field")
    root: dict[str, Any] = {
        "type": "object",
        "description": _description(model),
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": _convert(properties["spec"], definitions, "spec"),
        },
        "required": ["spec"],
    }
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": root},
    }
    if "status" in properties:
        root["properties"]["status"] = _convert(properties["status"], definitions, "status")
        root["properties"]["status"].pop("default", None)
        version["subresources"] = {"status": {}}
    columns = [column.to_wire() for column in info.printer_columns]
    if columns:
        version["additionalPrinterColumns"] = columns
    names: dict[str, Any] = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": info.plural,
        "singular": kind.lower(),
    }
    if info.short_names:
        names["shortNames"] = list(info.short_names)
    if info.categories:
        names["categories"] = list(info.categories)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{info.plural}.{GROUP}"},
        "spec": {"group": GROUP, "names": names, "scope": info.scope, "versions": [version]},
    }


def _description(model: type[BaseModel]) -> str:
    doc = (model.__doc__ or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ")


def _resolve(node: dict[str, Any], definitions: dict[str, Any], path: str) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    name = node["$ref"].rsplit("/", 1)[-1]
    if name not in definitions:
        raise CrdSchemaError(f"{path}: unresolvable reference {node['$ref']}")
    merged = dict(definitions[name])
    merged.update({key: value for key, value in node.items() if key != "$ref"})
    return merged


def _convert(node: dict[str, Any], definitions: dict[str, Any], path: str) -> dict[str, Any]:
    """Rewrite one pydantic JSON-schema node into a structural OpenAPI v3 node."""
    node = _resolve(node, definitions, path)
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = _resolve(node["allOf"][0], definitions, path)
        node = {**inner, **{k: v for k, v in node.items() if k != "allOf"}}
    if node.get("x-kubernetes-int-or-string"):
        out: dict[str, Any] = {"x-kubernetes-int-or-string": True}
        if "description" in node:
            out["description"] = node["description"].replace("``", "`")
        return out
    if node.get("x-kubernetes-preserve-unknown-fields"):
        out = {key: node[key] for key in ("type", "description") if key in node}
        if "description" in out:
            out["description"] = out["description"].replace("``", "`")
        out["x-kubernetes-preserve-unknown-fields"] = True
        return out
    nullable = False
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        nullable = len(branches) != len(node["anyOf"])
        if len(branches) != 1:
            raise CrdSchemaError(
                f"{path}: a union of {len(branches)} types has no structural form; "
                "use one type, or mark it x-kubernetes-int-or-string"
            )
        extra = {k: v for k, v in node.items() if k != "anyOf"}
        node = {**_resolve(branches[0], definitions, path), **extra}
        if node.get("x-kubernetes-int-or-string") or node.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            converted = _convert(node, definitions, path)
            converted["nullable"] = True
            return converted
    if "const" in node:
        node = {**node, "enum": [node["const"]]}
        node.pop("const")
    out = {}
    for key, value in node.items():
        if key not in _KEPT_KEYS or key == "anyOf":
            continue
        out[key] = value.replace("``", "`") if key == "description" else value
    if "type" not in node:
        if "enum" in node:
            out["type"] = _enum_type(node["enum"], path)
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    kind = out.get("type")
    if isinstance(kind, list):
        raise CrdSchemaError(f"{path}: multi-typed field {kind}")
    if kind == "object":
        props = node.get("properties")
        extra_schema = node.get("additionalProperties")
        out.pop("additionalProperties", None)
        if props:
            out["properties"] = {
                name: _convert(child, definitions, f"{path}.{name}")
                for name, child in props.items()
            }
            if isinstance(extra_schema, dict):
                raise CrdSchemaError(f"{path}: both properties and additionalProperties")
        elif isinstance(extra_schema, dict) and extra_schema:
            out["additionalProperties"] = _convert(extra_schema, definitions, f"{path}.*")
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    if kind == "array":
        out["items"] = _convert(node.get("items", {}), definitions, f"{path}[]")
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in out and not isinstance(out[bound], bool):
            out["minimum" if bound == "exclusiveMinimum" else "maximum"] = out[bound]
            out[bound] = True
    if out.get("default", 0) is None:
        out.pop("default")
    if nullable:
        out["nullable"] = True
    return out


def _enum_type(values: list[Any], path: str) -> str:
    kinds = {type(value) for value in values}
    if kinds == {str}:
        return "string"
    if kinds == {int}:
        return "integer"
    if kinds == {bool}:
        return "boolean"
    raise CrdSchemaError(f"{path}: enum of mixed types {sorted(k.__name__ for k in kinds)}")


def structural_problems(schema: dict[str, Any], path: str = "") -> list[str]:
    """Why ``schema`` is not structural (empty if it is), after the API server's rules."""
    problems: list[str] = []
    special = schema.get("x-kubernetes-int-or-string") or schema.get(
        "x-kubernetes-preserve-unknown-fields"
    )
    if "type" not in schema and not special:
        problems.append(f"{path or '<root>'}: no type")
    if "$ref" in schema:
        problems.append(f"{path}: $ref")
    if schema.get("additionalProperties") is False:
        problems.append(f"{path}: additionalProperties: false")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{path}: properties and additionalProperties together")
    if "anyOf" in schema and schema["anyOf"] != _INT_OR_STRING:
        for branch in schema["anyOf"]:
            if {"type", "description", "default", "nullable"} & set(branch):
                problems.append(f"{path}: anyOf branch sets type/description/default/nullable")
    for key in schema:
        if key not in _KEPT_KEYS and not key.startswith("x-kubernetes-"):
            problems.append(f"{path}: unsupported key {key}")
    for name, child in schema.get("properties", {}).items():
        problems.extend(structural_problems(child, f"{path}.{name}"))
    if isinstance(schema.get("additionalProperties"), dict):
        problems.extend(structural_problems(schema["additionalProperties"], f"{path}.*"))
    if isinstance(schema.get("items"), dict):
        problems.extend(structural_problems(schema["items"], f"{path}[]"))
    return problems

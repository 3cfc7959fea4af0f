"""OpenAPI v3 (and v2) documents, as ``kubectl apply`` and ``kubectl explain`` read them.

kubectl 1.32 starts ``apply`` by fetching ``/openapi/v3`` and then the document of the
object's group-version. It looks there for (a) a component schema tagged with the
object's ``x-kubernetes-group-version-kind`` — for strategic merge patches and
``explain`` — and (b) a PATCH operation for that kind that lists the ``fieldValidation``
query parameter, in which case it leaves field validation to the server. Documents are
built from the kubernetes-validate definitions for built-ins and from the CRDs' schemas
for custom resources, cached, and rebuilt when the set of served resources changes.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from milkyway.sim.apiserver.schemas import BuiltinSchemas

_JSON_REF = "#/$defs/"
_V3_REF = "#/components/schemas/"
_V2_REF = "#/definitions/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_OBJECT_META = f"{_META}ObjectMeta"
_LIST_META = f"{_META}ListMeta"
_STATUS = f"{_META}Status"
_DELETE_OPTIONS = f"{_META}DeleteOptions"
_PATCH = f"{_META}Patch"
SCALE = "io.k8s.api.autoscaling.v1.Scale"
_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ServedResource:
    """One resource at one version, as the OpenAPI documents describe it.

    ``schema`` is ``None`` for built-ins (their definitions come from
    :class:`BuiltinSchemas`) and a custom resource version's ``openAPIV3Schema`` (or an
    object carrying it as ``.schema``, like :class:`StructuralSchema`) otherwise.
    """

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    schema: Any = field(default=None, compare=False)
    verbs: tuple[str, ...] = _ALL_VERBS
    subresources: tuple[str, ...] = ()
    list_kind: str = ""

    @property
    def group_version_path(self) -> str:
        return f"apis/{self.group}/{self.version}" if self.group else f"api/{self.version}"

    @property
    def openapi_schema(self) -> dict[str, Any] | None:
        schema = getattr(self.schema, "schema", self.schema)
        return schema if isinstance(schema, dict) else None


class OpenAPIPublisher:
    """Builds and caches the OpenAPI documents of one cluster's served resources."""

    def __init__(
        self,
        schemas: BuiltinSchemas,
        served: Callable[[], Iterable[ServedResource]],
        *,
        kubernetes_version: str = "",
    ) -> None:
        self.schemas = schemas
        self._served = served
        self._version = kubernetes_version or f"v{schemas.version}.0"
        self._fingerprint: bytes | None = None
        self._by_path: dict[str, list[ServedResource]] = {}
        self._v3: dict[str, dict[str, Any]] = {}
        self._v3_hashes: dict[str, str] = {}
        self._v2: dict[str, Any] | None = None

    # -- public documents -----------------------------------------------------------

    def v3_index(self) -> dict[str, Any]:
        """``GET /openapi/v3``: one entry per group-version, with a content hash."""
        self._refresh()
        paths = {}
        for path in sorted(self._by_path):
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={self._hash_of(path)}"}
        return {"paths": paths}

    def v3_document(self, group_version_path: str) -> dict[str, Any] | None:
        """``GET /openapi/v3/<path>`` (``api/v1``, ``apis/apps/v1``…); ``None`` if unknown."""
        self._refresh()
        path = group_version_path.strip("/")
        if path not in self._by_path:
            return None
        if path not in self._v3:
            self._v3[path] = self._build_v3(path)
        return self._v3[path]

    def v3_hash(self, group_version_path: str) -> str | None:
        self._refresh()
        path = group_version_path.strip("/")
        return self._hash_of(path) if path in self._by_path else None

    def v2_document(self) -> dict[str, Any]:
        """``GET /openapi/v2`` as JSON: every served resource in one Swagger 2.0 document."""
        self._refresh()
        if self._v2 is None:
            self._v2 = self._build_v2()
        return self._v2

    # -- cache ------------------------------------------------------------------------

    def _refresh(self) -> None:
        served = list(self._served())
        fingerprint = _fingerprint(served)
        if fingerprint == self._fingerprint:
            return
        by_path: dict[str, list[ServedResource]] = {}
        for resource in served:
            by_path.setdefault(resource.group_version_path, []).append(resource)
        self._by_path = by_path
        self._fingerprint = fingerprint
        self._v3.clear()
        self._v3_hashes.clear()
        self._v2 = None

    def _hash_of(self, path: str) -> str:
        if path not in self._v3_hashes:
            document = self.v3_document(path)
            digest = hashlib.sha512(orjson.dumps(document, option=orjson.OPT_SORT_KEYS))
            self._v3_hashes[path] = digest.hexdigest().upper()
        return self._v3_hashes[path]

    # -- building -----------------------------------------------------------------------

    def _build_v3(self, path: str) -> dict[str, Any]:
        resources = self._by_path[path]
        components: dict[str, Any] = {}
        paths: dict[str, Any] = {}
        for resource in resources:
            kind_name, list_name = self._add_schemas(resource, components, _V3_REF, v3=True)
            if kind_name is None or list_name is None:
                continue
            paths.update(_paths(resource, kind_name, list_name, _V3_REF, v3=True))
        for name in (_STATUS, _DELETE_OPTIONS, _PATCH):
            self._add_builtin_closure(name, components, _V3_REF, v3=True)
        if any("scale" in r.subresources for r in resources):
            self._add_builtin_closure(SCALE, components, _V3_REF, v3=True)
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": self._version},
            "paths": paths,
            "components": {
                "schemas": dict(sorted(components.items())),
                "securitySchemes": {
                    "BearerToken": {
                        "type": "apiKey",
                        "in": "header",
                        "name": "authorization",
                        "description": "Bearer Token authentication",
                    }
                },
            },
            "security": [{"BearerToken": []}],
        }

    def _build_v2(self) -> dict[str, Any]:
        definitions: dict[str, Any] = {}
        paths: dict[str, Any] = {}
        for path in sorted(self._by_path):
            for resource in self._by_path[path]:
                kind_name, list_name = self._add_schemas(resource, definitions, _V2_REF, v3=False)
                if kind_name is None or list_name is None:
                    continue
                paths.update(_paths(resource, kind_name, list_name, _V2_REF, v3=False))
        for name in (_STATUS, _DELETE_OPTIONS, _PATCH, SCALE):
            self._add_builtin_closure(name, definitions, _V2_REF, v3=False)
        return {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": self._version},
            "paths": paths,
            "definitions": dict(sorted(definitions.items())),
            "securityDefinitions": {
                "BearerToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "authorization",
                    "description": "Bearer Token authentication",
                }
            },
            "security": [{"BearerToken": []}],
        }

    def _add_schemas(
        self, resource: ServedResource, out: dict[str, Any], ref: str, *, v3: bool
    ) -> tuple[str | None, str | None]:
        """Add the kind's and its list's schemas (and what they use); return their names."""
        custom = resource.openapi_schema
        list_kind = resource.list_kind or f"{resource.kind}List"
        if custom is None:
            gvk = (resource.group, resource.version, resource.kind)
            name = self.schemas.definition_name(gvk)
            if name is None:
                return None, None
            list_name = self.schemas.definition_name((resource.group, resource.version, list_kind))
            self._add_builtin_closure(name, out, ref, v3=v3)
            if list_name is not None:
                self._add_builtin_closure(list_name, out, ref, v3=v3)
            return name, list_name
        prefix = _reversed_group(resource.group)
        name = f"{prefix}.{resource.version}.{resource.kind}"
        list_name = f"{prefix}.{resource.version}.{list_kind}"
        out[name] = _custom_kind_schema(resource, custom, ref, v3=v3)
        out[list_name] = _custom_list_schema(resource, list_kind, name, ref)
        for meta in (_OBJECT_META, _LIST_META):
            self._add_builtin_closure(meta, out, ref, v3=v3)
        return name, list_name

    def _add_builtin_closure(self, name: str, out: dict[str, Any], ref: str, *, v3: bool) -> None:
        pending = [name]
        while pending:
            current = pending.pop()
            if current in out or current not in self.schemas.definitions:
                continue
            definition = self.schemas.definitions[current]
            out[current] = _without_type_meta_enums(_convert(definition, ref, v3=v3))
            pending.extend(_references(definition))


def _without_type_meta_enums(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop the ``apiVersion``/``kind`` enums kubernetes-validate adds to every kind.

    The real server publishes them as plain strings; ``kubectl explain`` would otherwise
    print an ``ENUM`` section the real one does not have.
    """
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for key in ("apiVersion", "kind"):
            if isinstance(properties.get(key), dict):
                properties[key].pop("enum", None)
    return schema


def _fingerprint(served: list[ServedResource]) -> bytes:
    parts = []
    for r in served:
        schema = r.openapi_schema
        parts.append(
            [
                r.group,
                r.version,
                r.kind,
                r.plural,
                r.namespaced,
                list(r.verbs),
                list(r.subresources),
                r.list_kind,
                _schema_digest(r.schema, schema),
            ]
        )
    return hashlib.sha256(orjson.dumps(sorted(parts, key=orjson.dumps))).digest()


def _schema_digest(holder: Any, schema: dict[str, Any] | None) -> str:
    if schema is None:
        return ""
    known = getattr(holder, "fingerprint", None)
    if isinstance(known, str):
        return known
    return hashlib.sha256(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _reversed_group(group: str) -> str:
    return ".".join(reversed(group.split(".")))


def _references(node: Any) -> list[str]:
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str) and ref.startswith(_JSON_REF):
                found.append(ref[len(_JSON_REF) :])
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return found


_SCHEMA_CHILDREN = ("items", "additionalProperties", "not")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def _convert(node: Any, ref: str, *, v3: bool) -> Any:
    """A JSON-schema node of kubernetes-validate made into OpenAPI (v3 or v2).

    ``["string", "null"]`` becomes ``"string"``; ``$ref`` points into the document's own
    schemas and, when it carries a description, is wrapped in ``allOf`` as the real
    server does (OpenAPI ignores siblings of ``$ref``); scalar ``oneOf`` unions
    (IntOrString, Quantity) stay ``oneOf`` in v3 and become strings in v2.
    """
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            continue
        if key == "type":
            types = [value] if isinstance(value, str) else [t for t in value if t != "null"]
            if types:
                out["type"] = types[0]
        elif key == "enum" and isinstance(value, list):
            out["enum"] = [v for v in value if v is not None]
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {k: _convert(v, ref, v3=v3) for k, v in value.items()}
        elif key in _SCHEMA_CHILDREN and isinstance(value, dict):
            out[key] = _convert(value, ref, v3=v3)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_convert(v, ref, v3=v3) for v in value]
        else:
            out[key] = copy.deepcopy(value)
    _simplify_scalar_union(out, v3=v3)
    target = node.get("$ref")
    if isinstance(target, str) and target.startswith(_JSON_REF):
        pointer = {"$ref": ref + target[len(_JSON_REF) :]}
        if not out:
            return pointer
        if v3:
            return {"allOf": [pointer], **out}
        return {**pointer, **{k: v for k, v in out.items() if k == "description"}}
    return out


def _simplify_scalar_union(out: dict[str, Any], *, v3: bool) -> None:
    branches = out.get("oneOf")
    if not isinstance(branches, list) or not all(set(b) == {"type"} for b in branches):
        return
    types = [b["type"] for b in branches]
    if "integer" in types:
        out["format"] = "int-or-string"
    if v3:
        out["oneOf"] = [{"type": t} for t in types]
        return
    del out["oneOf"]
    out["type"] = "string"


def _custom_kind_schema(
    resource: ServedResource, schema: dict[str, Any], ref: str, *, v3: bool
) -> dict[str, Any]:
    out = _custom_node(schema, v3=v3)
    properties = out.setdefault("properties", {})
    properties["apiVersion"] = {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an "
        "object.",
    }
    properties["kind"] = {
        "type": "string",
        "description": "Kind is a string value representing the REST resource this object "
        "represents.",
    }
    meta_ref = {"$ref": ref + _OBJECT_META}
    properties["metadata"] = (
        {"allOf": [meta_ref], "description": "Standard object's metadata."} if v3 else meta_ref
    )
    out["type"] = "object"
    out["x-kubernetes-group-version-kind"] = [
        {"group": resource.group, "kind": resource.kind, "version": resource.version}
    ]
    return out


def _custom_node(node: Any, *, v3: bool) -> Any:
    """A CRD schema node as published: int-or-string spelled out, v2 without v3-only keys."""
    if isinstance(node, list):
        return [_custom_node(n, v3=v3) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if not v3 and key in ("nullable", "x-kubernetes-validations", "anyOf", "oneOf", "not"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: _custom_node(v, v3=v3) for k, v in value.items()}
        elif key in (*_SCHEMA_CHILDREN, *_SCHEMA_LISTS, "default", "enum", "example"):
            out[key] = (
                copy.deepcopy(value)
                if key in ("default", "enum", "example")
                else _custom_node(value, v3=v3)
            )
        else:
            out[key] = copy.deepcopy(value)
    if out.get("x-kubernetes-int-or-string"):
        if v3:
            out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
        else:
            out["type"] = "string"
            out["format"] = "int-or-string"
    return out


def _custom_list_schema(
    resource: ServedResource, list_kind: str, item_name: str, ref: str
) -> dict[str, Any]:
    return {
        "description": f"{list_kind} is a list of {resource.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": ref + item_name}},
            "kind": {"type": "string"},
            "metadata": {"$ref": ref + _LIST_META},
        },
        "x-kubernetes-group-version-kind": [
            {"group": resource.group, "kind": list_kind, "version": resource.version}
        ],
    }


def _param(name: str, where: str, description: str, *, v3: bool, required: bool = False) -> dict:
    param: dict[str, Any] = {"name": name, "in": where, "description": description}
    if required or where == "path":
        param["required"] = True
    if v3:
        param["schema"] = {"type": "string", "uniqueItems": True}
    else:
        param["type"] = "string"
        param["uniqueItems"] = True
    return param


_FIELD_VALIDATION = (
    "fieldValidation instructs the server on how to handle objects in the request "
    "containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict."
)


def _write_params(*, v3: bool, apply: bool = False) -> list[dict[str, Any]]:
    params = [
        _param("dryRun", "query", "When present, modifications are not persisted.", v3=v3),
        _param("fieldManager", "query", "The name of the actor making the change.", v3=v3),
        _param("fieldValidation", "query", _FIELD_VALIDATION, v3=v3),
    ]
    if apply:
        params.append(_param("force", "query", "Force apply: take conflicting fields.", v3=v3))
    return params


def _body(schema_ref: str, *, v3: bool, content_types: tuple[str, ...]) -> dict[str, Any]:
    if v3:
        return {
            "requestBody": {
                "required": True,
                "content": {t: {"schema": {"$ref": schema_ref}} for t in content_types},
            }
        }
    return {
        "parameters": [
            {"name": "body", "in": "body", "required": True, "schema": {"$ref": schema_ref}}
        ]
    }


def _responses(schema_ref: str, *, v3: bool, codes: tuple[str, ...] = ("200",)) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in codes:
        if v3:
            out[code] = {
                "description": "OK",
                "content": {
                    t: {"schema": {"$ref": schema_ref}}
                    for t in ("application/json", "application/yaml")
                },
            }
        else:
            out[code] = {"description": "OK", "schema": {"$ref": schema_ref}}
    out["401"] = {"description": "Unauthorized"}
    return out


def _operation(
    resource: ServedResource,
    action: str,
    operation_id: str,
    *,
    kind: str,
    v3: bool,
    params: list[dict[str, Any]],
    body_ref: str | None,
    response_ref: str,
    content_types: tuple[str, ...] = ("application/json", "application/yaml"),
    codes: tuple[str, ...] = ("200",),
    gv: tuple[str, str] | None = None,
) -> dict[str, Any]:
    group, version = gv or (resource.group, resource.version)
    op: dict[str, Any] = {
        "description": f"{action} {kind}",
        "operationId": operation_id,
        "tags": [resource.group_version_path.replace("/", "_")],
        "parameters": list(params),
        "responses": _responses(response_ref, v3=v3, codes=codes),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": group, "kind": kind, "version": version},
    }
    if body_ref is not None:
        body = _body(body_ref, v3=v3, content_types=content_types)
        if v3:
            op.update(body)
        else:
            op["parameters"].extend(body["parameters"])
    return op


_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
# kubectl apply sends a strategic merge patch exactly when the kind's PATCH operation
# accepts one; custom resources do not, so kubectl falls back to a JSON merge patch.
_CUSTOM_PATCH_TYPES = tuple(t for t in _PATCH_TYPES if "strategic" not in t)


def _paths(
    resource: ServedResource, kind_name: str, list_name: str, ref: str, *, v3: bool
) -> dict[str, Any]:
    """The REST paths of a resource, with the actions its verbs allow."""
    base = f"/{resource.group_version_path}"
    kind_ref, list_ref = ref + kind_name, ref + list_name
    patch_ref, delete_ref, status_ref = ref + _PATCH, ref + _DELETE_OPTIONS, ref + _STATUS
    op_kind = resource.kind
    verbs = set(resource.verbs)
    ns_param = [_param("namespace", "path", "object name and auth scope", v3=v3)]
    name_param = [_param("name", "path", f"name of the {op_kind}", v3=v3)]
    scope = ns_param if resource.namespaced else []
    collection = (
        f"{base}/namespaces/{{namespace}}/{resource.plural}"
        if resource.namespaced
        else f"{base}/{resource.plural}"
    )
    item = f"{collection}/{{name}}"
    suffix = f"{_camel(resource.group, resource.version)}{op_kind}"
    scoped = "Namespaced" if resource.namespaced else ""
    patch_types = _CUSTOM_PATCH_TYPES if resource.openapi_schema is not None else _PATCH_TYPES
    paths: dict[str, Any] = {}

    def add(path: str, method: str, operation: dict[str, Any]) -> None:
        paths.setdefault(path, {})[method] = operation

    def op(action: str, verb_id: str, **kwargs: Any) -> dict[str, Any]:
        return _operation(resource, action, verb_id, kind=op_kind, v3=v3, **kwargs)

    if "list" in verbs:
        add(
            collection,
            "get",
            op("list", f"list{scoped}{suffix}", params=scope, body_ref=None, response_ref=list_ref),
        )
        if resource.namespaced:
            add(
                f"{base}/{resource.plural}",
                "get",
                op(
                    "list",
                    f"list{suffix}ForAllNamespaces",
                    params=[],
                    body_ref=None,
                    response_ref=list_ref,
                ),
            )
    if "create" in verbs:
        add(
            collection,
            "post",
            op(
                "post",
                f"create{scoped}{suffix}",
                params=scope + _write_params(v3=v3),
                body_ref=kind_ref,
                response_ref=kind_ref,
                codes=("200", "201", "202"),
            ),
        )
    if "deletecollection" in verbs:
        add(
            collection,
            "delete",
            op(
                "deletecollection",
                f"deleteCollection{scoped}{suffix}",
                params=scope,
                body_ref=None,
                response_ref=status_ref,
            ),
        )
    item_scope = scope + name_param
    if "get" in verbs:
        add(
            item,
            "get",
            op(
                "get",
                f"read{scoped}{suffix}",
                params=item_scope,
                body_ref=None,
                response_ref=kind_ref,
            ),
        )
    if "update" in verbs:
        add(
            item,
            "put",
            op(
                "put",
                f"replace{scoped}{suffix}",
                params=item_scope + _write_params(v3=v3),
                body_ref=kind_ref,
                response_ref=kind_ref,
                codes=("200", "201"),
            ),
        )
    if "patch" in verbs:
        add(
            item,
            "patch",
            op(
                "patch",
                f"patch{scoped}{suffix}",
                params=item_scope + _write_params(v3=v3, apply=True),
                body_ref=patch_ref,
                response_ref=kind_ref,
                content_types=patch_types,
                codes=("200", "201"),
            ),
        )
    if "delete" in verbs:
        add(
            item,
            "delete",
            op(
                "delete",
                f"delete{scoped}{suffix}",
                params=item_scope,
                body_ref=delete_ref,
                response_ref=status_ref,
                codes=("200", "202"),
            ),
        )
    for sub in resource.subresources:
        if sub not in ("status", "scale"):
            continue
        sub_path = f"{item}/{sub}"
        sub_id = f"{scoped}{suffix}{sub.capitalize()}"
        sub_ref, sub_kind, sub_gv = kind_ref, op_kind, None
        if sub == "scale":
            sub_ref, sub_kind, sub_gv = ref + SCALE, "Scale", ("autoscaling", "v1")

        sub_op = functools.partial(_operation, resource, kind=sub_kind, v3=v3, gv=sub_gv)

        write = item_scope + _write_params(v3=v3)
        add(
            sub_path,
            "get",
            sub_op("get", f"read{sub_id}", params=item_scope, body_ref=None, response_ref=sub_ref),
        )
        add(
            sub_path,
            "put",
            sub_op("put", f"replace{sub_id}", params=write, body_ref=sub_ref, response_ref=sub_ref),
        )
        add(
            sub_path,
            "patch",
            sub_op(
                "patch",
                f"patch{sub_id}",
                params=item_scope + _write_params(v3=v3, apply=True),
                body_ref=patch_ref,
                response_ref=sub_ref,
                content_types=patch_types,
            ),
        )
    return paths


def _camel(group: str, version: str) -> str:
    words = [w for w in group.replace("-", ".").split(".")[:1] if w] if group else ["core"]
    return "".join(w[:1].upper() + w[1:] for w in [*words, version])

"""``/openapi/v2`` as the protobuf document kubectl asks for.

kubectl falls back to OpenAPI v2 when the v3 document has no schema for an object's kind
(a kind the cluster does not serve, or a custom resource whose CRD is in the same file),
and it asks for v2 with a protobuf-only ``Accept``
(``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``). A JSON answer makes it
fail with "proto: cannot parse invalid wire-format data"; the protobuf document lets it
see that the kind is unknown and go on to its own "no matches for kind ... ensure CRDs
are installed first". The message types are gnostic's ``openapi.v2`` schema, which kubectl
carries (see :mod:`kubectl_schemas`).

The document carries ``swagger``, ``info`` and every definition with the schema keywords
kubectl's validation reads (types, formats, refs, properties, items, additional
properties, required, enums, descriptions and the ``x-kubernetes-*`` extensions); paths
are left out, as kubectl's v2 models use only the definitions.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import message_factory
from google.protobuf.message import Message

from milkyway.sim.apiserver.kubectl_schemas import KubectlSchemas, SchemasUnavailable

OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
# What the response says it is: a valid media type (no "@"), as the real server sends.
OPENAPI_V2_PROTOBUF_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def wants_protobuf(accept: str) -> bool:
    """True when the client's first choice is the protobuf document."""
    first = accept.split(",", 1)[0].split(";", 1)[0].strip()
    return first == OPENAPI_V2_PROTOBUF


def encode_document(document: dict[str, Any], schemas: KubectlSchemas) -> bytes:
    if not schemas.has_openapi_v2:
        raise SchemasUnavailable(
            f"{schemas.binary} carries no OpenAPI v2 protobuf schema: install kubectl 1.32 "
            "(Debian: kubernetes-client)"
        )
    doc = _new(schemas, "Document")
    doc.swagger = str(document.get("swagger", "2.0"))
    info = document.get("info") or {}
    doc.info.title = str(info.get("title", ""))
    doc.info.version = str(info.get("version", ""))
    for name, schema in sorted((document.get("definitions") or {}).items()):
        named = doc.definitions.additional_properties.add()
        named.name = name
        _fill_schema(named.value, schema)
    return doc.SerializeToString()


def _new(schemas: KubectlSchemas, name: str) -> Any:
    descriptor = schemas.pool.FindMessageTypeByName(f"openapi.v2.{name}")
    return message_factory.GetMessageClass(descriptor)()


def _fill_schema(target: Message, schema: dict[str, Any]) -> None:
    out: Any = target
    if "$ref" in schema:
        out._ref = schema["$ref"]
    for key, field in (("format", "format"), ("title", "title"), ("description", "description")):
        if isinstance(schema.get(key), str):
            setattr(out, field, schema[key])
    kind = schema.get("type")
    if isinstance(kind, str):
        out.type.value.append(kind)
    elif isinstance(kind, list):
        out.type.value.extend(str(k) for k in kind)
    out.required.extend(str(r) for r in schema.get("required") or [])
    for value in schema.get("enum") or []:
        out.enum.add().yaml = orjson.dumps(value).decode()
    items = schema.get("items")
    if isinstance(items, dict):
        _fill_schema(out.items.schema.add(), items)
    for part in schema.get("allOf") or []:
        if isinstance(part, dict):
            _fill_schema(out.all_of.add(), part)
    for name, sub in (schema.get("properties") or {}).items():
        named = out.properties.additional_properties.add()
        named.name = name
        _fill_schema(named.value, sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, bool):
        out.additional_properties.boolean = extra
    elif isinstance(extra, dict):
        _fill_schema(out.additional_properties.schema, extra)
    for key, value in schema.items():
        if key.startswith("x-"):
            extension = out.vendor_extension.add()
            extension.name = key
            extension.value.yaml = orjson.dumps(value).decode()

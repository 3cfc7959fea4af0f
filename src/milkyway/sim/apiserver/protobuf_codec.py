"""``application/vnd.kubernetes.protobuf`` request bodies, decoded to the JSON object.

The wire form is the real API server's: four magic bytes ``k8s\\x00``, then a
``runtime.Unknown`` whose ``typeMeta`` names apiVersion and kind and whose ``raw`` holds
the typed message. The schemas come from the kubectl on the simulator's PATH
(:mod:`kubectl_schemas`); field names in them are already the JSON names. A handful of
apimachinery types have a JSON form of their own and are converted by hand: ``Time`` and
``MicroTime`` (RFC 3339), ``Quantity`` (its string), ``IntOrString``, ``RawExtension`` and
``FieldsV1`` (raw JSON), ``Duration`` and the ``items`` wrappers (``ExtraValue``,
``Verbs``); Go's inline embeddings (a pod volume's ``volumeSource``, a probe's
``handler``, ...: :data:`INLINE_FIELDS`) are flattened into their parent, as in JSON.

The Go encoder writes every non-pointer field, zero or not, so a zero value on the wire
cannot tell "unset" from "set to zero". Like the JSON of a Go struct (``omitempty``), zero
strings, numbers and ``false`` are read as absent, except for the pointer fields in
:data:`ZERO_IS_A_VALUE`, where ``0``/``false`` is a choice the client made (``replicas: 0``,
``gracePeriodSeconds: 0``, ``automountServiceAccountToken: false``...).
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

import orjson
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from milkyway.sim.apiserver import errors
from milkyway.sim.apiserver.kubectl_schemas import KubectlSchemas, SchemasUnavailable

PROTOBUF = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"
_TIME = _META + "Time"
_MICRO_TIME = _META + "MicroTime"
_DURATION = _META + "Duration"
_FIELDS_V1 = _META + "FieldsV1"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
_ITEMS_WRAPPERS = {"ExtraValue", "Verbs"}
# Groups whose proto package is not the first label of the group name.
_PACKAGES = {
    "": "k8s.io.api.core",
    "internal.apiserver.k8s.io": "k8s.io.api.apiserverinternal",
    "metrics.k8s.io": "k8s.io.metrics.pkg.apis.metrics",
    "meta.k8s.io": "k8s.io.apimachinery.pkg.apis.meta",
}

# Go structs embedded with ``json:",inline"``: a message field in protobuf, their fields
# flattened into the parent in JSON.
INLINE_FIELDS = frozenset(
    {
        ("k8s.io.api.core.v1.Volume", "volumeSource"),
        ("k8s.io.api.core.v1.Probe", "handler"),
        ("k8s.io.api.core.v1.PersistentVolumeSpec", "persistentVolumeSource"),
        ("k8s.io.api.core.v1.EphemeralContainer", "ephemeralContainerCommon"),
        ("k8s.io.api.resource.v1alpha3.DeviceClaimConfiguration", "deviceConfiguration"),
        ("k8s.io.api.resource.v1alpha3.DeviceClassConfiguration", "deviceConfiguration"),
        ("k8s.io.api.resource.v1alpha3.DeviceAllocationConfiguration", "deviceConfiguration"),
        ("k8s.io.api.resource.v1beta1.DeviceClaimConfiguration", "deviceConfiguration"),
        ("k8s.io.api.resource.v1beta1.DeviceClassConfiguration", "deviceConfiguration"),
        ("k8s.io.api.resource.v1beta1.DeviceAllocationConfiguration", "deviceConfiguration"),
    }
)

ZERO_IS_A_VALUE = frozenset(
    {
        "activeDeadlineSeconds",
        "allowPrivilegeEscalation",
        "automountServiceAccountToken",
        "backoffLimit",
        "blockOwnerDeletion",
        "completions",
        "controller",
        "defaultMode",
        "enableServiceLinks",
        "failedJobsHistoryLimit",
        "gracePeriodSeconds",
        "immutable",
        "mode",
        "optional",
        "orphanDependents",
        "parallelism",
        "privileged",
        "progressDeadlineSeconds",
        "readOnlyRootFilesystem",
        "replicas",
        "revisionHistoryLimit",
        "runAsGroup",
        "runAsNonRoot",
        "runAsUser",
        "shareProcessNamespace",
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "suspend",
        "terminationGracePeriodSeconds",
        "ttlSecondsAfterFinished",
    }
)


def is_protobuf(content_type: str) -> bool:
    return content_type == PROTOBUF


def decode_body(raw: bytes, schemas: KubectlSchemas) -> dict[str, Any]:
    """The JSON object a protobuf request body stands for; 400 when it is not one."""
    if not raw.startswith(MAGIC):
        raise errors.bad_request(
            "the protobuf body does not start with the Kubernetes magic bytes 'k8s\\x00'"
        )
    unknown = _message_class(schemas, _UNKNOWN)()
    try:
        unknown.ParseFromString(raw[len(MAGIC) :])
    except DecodeError as exc:
        raise errors.bad_request(f"the protobuf body is not a runtime.Unknown: {exc}") from None
    api_version = unknown.typeMeta.apiVersion
    kind = unknown.typeMeta.kind
    if not kind or not api_version:
        raise errors.bad_request("the protobuf body names no apiVersion and kind")
    name = message_name(schemas, api_version, kind)
    if name is None:
        raise errors.unsupported_media_type_message(
            f"the protobuf schemas in {schemas.binary} have no type {kind} in {api_version}; "
            "send this object as JSON"
        )
    typed = _message_class(schemas, name)()
    try:
        typed.ParseFromString(unknown.raw)
    except DecodeError as exc:
        raise errors.bad_request(f"the protobuf body is not a valid {kind}: {exc}") from None
    obj = message_to_json(typed)
    return {"apiVersion": api_version, "kind": kind, **obj}


def message_name(schemas: KubectlSchemas, api_version: str, kind: str) -> str | None:
    group, _, version = api_version.rpartition("/")
    package = _PACKAGES.get(group, f"k8s.io.api.{group.split('.', 1)[0]}")
    for candidate in (f"{package}.{version}.{kind}", f"{_META}{kind}"):
        try:
            schemas.pool.FindMessageTypeByName(candidate)
        except KeyError:
            continue
        return candidate
    return None


def message_to_json(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    parent = message.DESCRIPTOR.full_name
    for field, value in message.ListFields():
        converted = _field_value(field, value)
        if converted is _ABSENT:
            continue
        if (parent, field.name) in INLINE_FIELDS and isinstance(converted, dict):
            out.update(converted)
        else:
            out[field.name] = converted
    return out


_ABSENT: Any = object()


def _field_value(field: FieldDescriptor, value: Any) -> Any:
    if _is_map(field):
        value_field = field.message_type.fields_by_name["value"]
        mapped = {key: _single(value_field, item) for key, item in value.items()}
        return {k: v for k, v in mapped.items() if v is not _ABSENT} or _ABSENT
    if field.is_repeated:
        items = [_single(field, item) for item in value]
        return [item for item in items if item is not _ABSENT] or _ABSENT
    converted = _single(field, value)
    if converted is _ABSENT:
        return _ABSENT
    if converted == "":
        return _ABSENT
    if converted is False or (type(converted) is int and converted == 0):
        return converted if field.name in ZERO_IS_A_VALUE else _ABSENT
    return converted


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.message_type.GetOptions().map_entry
        and field.is_repeated
    )


def _single(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode() if value else _ABSENT
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64):
            return int(value)
        return value
    return _message_value(field.message_type, value)


def _message_value(descriptor: Descriptor, value: Any) -> Any:
    full = descriptor.full_name
    if full in (_TIME, _MICRO_TIME):
        if not value.seconds and not value.nanos:
            return _ABSENT
        moment = datetime.datetime.fromtimestamp(value.seconds, datetime.UTC)
        if full == _TIME:
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{value.nanos // 1000:06d}Z"
    if full == _QUANTITY:
        return value.string or _ABSENT
    if full == _INT_OR_STRING:
        return value.strVal if value.type == 1 else int(value.intVal)
    if full == _RAW_EXTENSION:
        return _raw_json(value.raw)
    if full == _FIELDS_V1:
        return _raw_json(value.Raw)
    if full == _DURATION:
        return _duration(int(value.duration))
    if descriptor.name in _ITEMS_WRAPPERS and "items" in descriptor.fields_by_name:
        return list(value.items)
    return message_to_json(value)


def _raw_json(raw: bytes) -> Any:
    if not raw:
        return _ABSENT
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.bad_request(
            "an embedded object (RawExtension) in the protobuf body is not JSON"
        ) from None


def _duration(nanoseconds: int) -> str:
    """Go's ``time.Duration.String`` for whole hours, minutes, seconds and fractions."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    rest = abs(nanoseconds)
    hours, rest = divmod(rest, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = rest / 1_000_000_000
    text = f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _message_class(schemas: KubectlSchemas, name: str) -> type[Message]:
    return message_factory.GetMessageClass(schemas.pool.FindMessageTypeByName(name))


def schemas_or_415(loader: Any) -> KubectlSchemas:
    """The schemas, or a 415 that names what to install when kubectl is missing."""
    try:
        return loader()
    except SchemasUnavailable as exc:
        raise errors.unsupported_media_type_message(str(exc)) from None

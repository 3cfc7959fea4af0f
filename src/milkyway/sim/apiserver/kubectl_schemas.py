"""The Kubernetes protobuf schemas, read from the ``kubectl`` binary at run time.

No installable package ships the Kubernetes ``.proto`` files, but every kubectl build
registers each ``k8s.io/.../generated.proto`` as a gzipped ``FileDescriptorProto`` and
carries gnostic's ``openapiv2/OpenAPIv2.proto`` as a plain one. Scanning the binary once
gives a :class:`DescriptorPool` with every API type kubectl can send, so the simulator
decodes exactly what the client on this machine encodes, without schema files of its own.
"""

from __future__ import annotations

import shutil
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool

_GZIP_MAGIC = b"\x1f\x8b\x08\x00\x00\x00\x00\x00"
_GOGO = "github.com/gogo/protobuf/gogoproto/gogo.proto"
_OPENAPI_V2 = b"\n\x19openapiv2/OpenAPIv2.proto"
_MAX_DESCRIPTOR = 4 * 1024 * 1024
# FileDescriptorProto's own fields (number -> wire type): the walk that finds where an
# uncompressed descriptor ends inside the binary stops at the first tag that is not one.
_FILE_FIELDS = {1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 2, 7: 2, 8: 2, 9: 2, 10: 0, 11: 0, 12: 2, 14: 0}


class SchemasUnavailable(Exception):
    """kubectl is missing or carries no Kubernetes schemas; the message says what to do."""


@dataclass(frozen=True)
class KubectlSchemas:
    """The descriptor pool built from one kubectl binary."""

    binary: Path
    pool: descriptor_pool.DescriptorPool
    files: tuple[str, ...]
    has_openapi_v2: bool


_lock = threading.Lock()
_cache: dict[Path, KubectlSchemas] = {}


def kubectl_schemas(binary: str | Path | None = None) -> KubectlSchemas:
    """The schemas of ``binary`` (default: the ``kubectl`` on PATH), scanned once per
    process; raises :class:`SchemasUnavailable` naming what to install."""
    if binary is None:
        found = shutil.which("kubectl")
        if found is None:
            raise SchemasUnavailable(
                "decoding application/vnd.kubernetes.protobuf needs the Kubernetes schemas "
                "that kubectl carries, and no kubectl is on the simulator's PATH: install "
                "kubectl 1.32 (Debian: kubernetes-client) or send JSON"
            )
        binary = found
    path = Path(binary).resolve()
    with _lock:
        cached = _cache.get(path)
        if cached is None:
            cached = _cache[path] = _scan(path)
        return cached


def _scan(path: Path) -> KubectlSchemas:
    data = path.read_bytes()
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    at = data.find(_GZIP_MAGIC)
    while at >= 0:
        parsed = _gzipped_descriptor(data, at)
        if parsed is not None and parsed.name.startswith("k8s.io/"):
            files[parsed.name] = parsed
        at = data.find(_GZIP_MAGIC, at + 1)
    if not files:
        raise SchemasUnavailable(
            f"{path} carries no Kubernetes protobuf schemas: install kubectl 1.32 "
            "(Debian: kubernetes-client) or send JSON"
        )
    openapi = _plain_descriptor(data, data.find(_OPENAPI_V2))
    if openapi is not None:
        files[openapi.name] = openapi
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()
    pool.AddSerializedFile(_any_proto())
    added.add("google/protobuf/any.proto")

    def add(name: str) -> None:
        if name in added:
            return
        added.add(name)
        proto = files[name]
        kept = [d for d in proto.dependency if d != _GOGO]
        for dependency in kept:
            if dependency in files:
                add(dependency)
        del proto.dependency[:]
        proto.dependency.extend(d for d in kept if d in added)
        pool.Add(proto)

    for name in sorted(files):
        add(name)
    return KubectlSchemas(path, pool, tuple(sorted(files)), openapi is not None)


def _gzipped_descriptor(data: bytes, at: int) -> descriptor_pb2.FileDescriptorProto | None:
    inflater = zlib.decompressobj(31)
    try:
        raw = inflater.decompress(data[at : at + _MAX_DESCRIPTOR], _MAX_DESCRIPTOR)
    except zlib.error:
        return None
    return _parse(raw)


def _plain_descriptor(data: bytes, at: int) -> descriptor_pb2.FileDescriptorProto | None:
    if at < 0:
        return None
    end = _descriptor_end(data, at)
    return _parse(data[at:end]) if end > at else None


def _parse(raw: bytes) -> descriptor_pb2.FileDescriptorProto | None:
    try:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
    except Exception:  # any undecodable member is simply not a descriptor
        return None
    if not proto.name.endswith(".proto"):
        return None
    return proto


def _descriptor_end(data: bytes, at: int) -> int:
    pos, limit = at, min(len(data), at + _MAX_DESCRIPTOR)
    while pos < limit:
        tag, after = _varint(data, pos)
        if after < 0:
            break
        number, wire = tag >> 3, tag & 7
        if _FILE_FIELDS.get(number) != wire:
            break
        if wire == 0:
            _, after = _varint(data, after)
            if after < 0:
                break
            pos = after
        else:
            length, after = _varint(data, after)
            if after < 0 or after + length > limit:
                break
            pos = after + length
    return pos


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return 0, -1


def _any_proto() -> bytes:
    from google.protobuf import any_pb2

    return any_pb2.DESCRIPTOR.serialized_pb

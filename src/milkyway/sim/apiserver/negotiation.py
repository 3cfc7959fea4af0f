"""Which representation a read asks for in its ``Accept`` header.

Clients ask for server-side transformations with media type parameters:
``application/json;as=Table;v=v1;g=meta.k8s.io`` (kubectl's tables) and
``application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io`` (metadata-only
lists, gets and watches, as client-go's metadata client and garbage collector use). The
first acceptable entry wins, as on a real server; a header naming only representations the
server cannot produce is ``406 NotAcceptable``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from milkyway.sim.apiserver.errors import ApiError

TABLE = "Table"
PARTIAL = "PartialObjectMetadata"
PARTIAL_LIST = "PartialObjectMetadataList"
_META_GROUP = "meta.k8s.io"
_META_VERSIONS = ("v1", "v1beta1")
_JSON_TYPES = ("application/json", "application/*", "*/*")
# Asked for YAML or protobuf objects, the simulator answers JSON, as it always has (every
# YAML reader reads JSON; protobuf is not served).
_PLAIN_ONLY = ("application/yaml", "application/vnd.kubernetes.protobuf")
_ACCEPTED = (
    "application/json, application/yaml, application/vnd.kubernetes.protobuf, "
    "application/json;stream=watch, application/vnd.kubernetes.protobuf;stream=watch"
)


@dataclass(frozen=True)
class Representation:
    """``as_`` is "" (the objects themselves), ``Table`` or ``PartialObjectMetadata``[List]."""

    as_: str = ""
    version: str = "v1"

    @property
    def api_version(self) -> str:
        return f"{_META_GROUP}/{self.version}"

    @property
    def table(self) -> bool:
        return self.as_ == TABLE

    @property
    def metadata_only(self) -> bool:
        return self.as_ in (PARTIAL, PARTIAL_LIST)


PLAIN = Representation()


def negotiate(accept: str, *, collection: bool, watch: bool = False) -> Representation:
    """The representation to answer with. ``collection``: a list (or watch) request."""
    if not accept.strip():
        return PLAIN
    for entry in accept.split(","):
        parts = [p.strip() for p in entry.split(";")]
        media = parts[0].lower()
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        params.pop("q", None)
        stream = params.pop("stream", None)
        if media in _PLAIN_ONLY and "as" not in params:
            return PLAIN
        if media not in _JSON_TYPES or (stream is not None and stream != "watch"):
            continue
        as_ = params.get("as")
        if as_ is None:
            return PLAIN
        if params.get("g") != _META_GROUP or params.get("v") not in _META_VERSIONS:
            continue
        wanted = {TABLE}
        if watch:
            wanted |= {PARTIAL}
        elif collection:
            wanted |= {PARTIAL_LIST}
        else:
            wanted |= {PARTIAL}
        if as_ in wanted:
            return Representation(as_, params["v"])
    raise ApiError(
        406, "NotAcceptable", f"only the following media types are accepted: {_ACCEPTED}"
    )


def partial(obj: dict[str, Any], rep: Representation) -> dict[str, Any]:
    """The metadata-only form of an object."""
    return {"kind": PARTIAL, "apiVersion": rep.api_version, "metadata": obj.get("metadata", {})}


def partial_list(listed: dict[str, Any], rep: Representation) -> dict[str, Any]:
    return {
        "kind": PARTIAL_LIST,
        "apiVersion": rep.api_version,
        "metadata": listed.get("metadata", {}),
        "items": [partial(o, rep) for o in listed.get("items", [])],
    }

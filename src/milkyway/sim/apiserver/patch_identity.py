"""A patch may change an object's content, never which object it is.

The URL names the object; a patch whose result names another (``metadata.name``,
``metadata.namespace``) or another type (``kind``, ``apiVersion``) cannot be carried out
as asked, so the real server refuses it with 400 BadRequest rather than quietly keeping
the URL's identity.
"""

from __future__ import annotations

from typing import Any

from milkyway.sim.apiserver import errors
from milkyway.sim.apiserver.resources import ResourceInfo


def check_patched_identity(info: ResourceInfo, patched: dict[str, Any], name: str, ns: str) -> None:
    """Raise 400 when the patched object names another object or type than the URL."""
    md = patched.get("metadata") if isinstance(patched.get("metadata"), dict) else {}
    patched_name = md.get("name")
    if patched_name and patched_name != name:
        raise errors.bad_request(
            f"the name of the object ({patched_name}) does not match the name on the URL ({name})"
        )
    patched_ns = md.get("namespace")
    if info.namespaced and patched_ns and patched_ns != ns:
        raise errors.bad_request(
            f"the namespace of the object ({patched_ns}) does not match the namespace on the "
            f"URL ({ns})"
        )
    api_version, kind = patched.get("apiVersion"), patched.get("kind")
    if (api_version and api_version != info.api_version) or (kind and kind != info.kind):
        raise errors.bad_request(
            f"the API version in the data ({api_version}) and kind ({kind}) do not match "
            f"the resource {info.resource_name} ({info.api_version}, {info.kind})"
        )

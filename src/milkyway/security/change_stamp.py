"""Who changed an Application, as ``milkyway server`` vouches for it.

The operator starts the flows a changed Application needs; for an approval gate to refuse
the person who asked for the change, the run must name them. The server, which proved
who the caller is, stamps what it writes with the user and an HMAC (the decision key) over
the Application's namespace, name, spec and request annotations. The operator names that
user as the run's requester only while the stamp still matches what it sees: a later
change made elsewhere (kubectl) leaves a stamp that no longer holds, and the run is
requested by the operator itself. The proof also covers the server's request id, so the
runs a change causes name the request (and through it the audit record) that asked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

CHANGED_BY = "milkyway.ebay.com/changed-by"
CHANGED_BY_PROOF = "milkyway.ebay.com/changed-by-proof"
REQUEST_ID = "milkyway.ebay.com/request-id"
"""The server's request id, on what it wrote and on the FlowRuns that change causes."""
BOUND_ANNOTATIONS = ("milkyway.ebay.com/restart", "milkyway.ebay.com/replace")
"""Request annotations that start flows: a stamp covers them, so a request added later
by someone else does not inherit the stamp's user."""


def _canonical(spec: Any) -> Any:
    """The spec with every default filled in, as the API server stores it after applying
    the CRD's defaults: the server signs what it sends, the operator checks what it reads."""
    from pydantic import ValidationError

    from milkyway.model.application import ApplicationSpec

    try:
        return ApplicationSpec.model_validate(spec).model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    except ValidationError:
        return spec


def _digest(namespace: str, name: str, spec: Any, annotations: Mapping[str, str]) -> bytes:
    bound = [annotations.get(a, "") for a in BOUND_ANNOTATIONS]
    spec = _canonical(spec)
    text = json.dumps([namespace, name, spec, bound], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).digest()


def stamp(
    key: bytes,
    user: str,
    namespace: str,
    name: str,
    spec: Any,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The two annotations to write with ``spec``."""
    digest = _digest(namespace, name, spec, annotations or {})
    message = b"changed-by:" + user.encode() + b":" + digest
    request_id = (annotations or {}).get(REQUEST_ID, "")
    if request_id:
        message += b":request:" + request_id.encode()
    proof = hmac.new(key, message, hashlib.sha256)
    return {CHANGED_BY: user, CHANGED_BY_PROOF: proof.hexdigest()}


def stamped_user(key: bytes, app: Mapping[str, Any]) -> str | None:
    """The user the server stamped on ``app``, if the stamp matches it as it is now."""
    metadata = app.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    user = annotations.get(CHANGED_BY)
    proof = annotations.get(CHANGED_BY_PROOF)
    if not user or not proof:
        return None
    expected = stamp(
        key,
        user,
        metadata.get("namespace", ""),
        metadata.get("name", ""),
        app.get("spec"),
        annotations,
    )[CHANGED_BY_PROOF]
    return user if hmac.compare_digest(expected, proof) else None


def stamped_request(key: bytes, app: Mapping[str, Any]) -> str | None:
    """The server's request id on ``app``, if the server's stamp covers it as it is now
    (an id written or edited by anyone else names no request)."""
    request_id = ((app.get("metadata") or {}).get("annotations") or {}).get(REQUEST_ID)
    if not request_id or stamped_user(key, app) is None:
        return None
    return str(request_id)


def change_digest(app: Mapping[str, Any]) -> str:
    """A short digest of what the Application asks for (spec and request annotations):
    runs carry it, so a change that was rejected is not asked for again until it changes."""
    metadata = app.get("metadata") or {}
    digest = _digest(
        metadata.get("namespace", ""),
        metadata.get("name", ""),
        app.get("spec"),
        metadata.get("annotations") or {},
    )
    return digest.hex()[:16]

"""Kubernetes ``Status`` errors.

Every failure the simulated API server reports is an :class:`ApiError` that renders to the
same ``Status`` object a real API server returns (``kind: Status``, ``reason``, ``code``,
``details.causes``), because clients branch on ``reason`` and ``code``, not on text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cause:
    """One field-level reason, as in ``status.details.causes[]``."""

    reason: str
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"reason": self.reason, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


@dataclass
class ApiError(Exception):
    """An error answered as a Kubernetes ``Status`` with HTTP status ``code``."""

    code: int
    reason: str
    message: str
    name: str = ""
    group: str = ""
    kind: str = ""
    causes: list[Cause] = field(default_factory=list)
    retry_after_seconds: int | None = None

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def to_status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after_seconds is not None:
            details["retryAfterSeconds"] = self.retry_after_seconds
        # The real server's field order: clients that compare bodies byte for byte see the
        # same text (kind, apiVersion, metadata, status, message, reason, details, code).
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if details:
            status["details"] = details
        status["code"] = self.code
        return status


def _resource(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> ApiError:
    return ApiError(401, "Unauthorized", message)


def forbidden(
    user: str,
    verb: str,
    group: str,
    plural: str,
    name: str,
    namespace: str,
    subresource: str = "",
) -> ApiError:
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    what = _resource(group, plural)
    named = f' "{name}"' if name else ""
    resource = f"{plural}/{subresource}" if subresource else plural
    return ApiError(
        403,
        "Forbidden",
        f'{what}{named} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{group}"{where}',
        name=name,
        group=group,
        kind=plural,
    )


def not_found(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{_resource(group, plural)} "{name}" not found',
        name=name,
        group=group,
        kind=plural,
    )


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def already_exists(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{_resource(group, plural)} "{name}" already exists',
        name=name,
        group=group,
        kind=plural,
    )


def conflict(
    group: str, plural: str, name: str, why: str, causes: list[Cause] | None = None
) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_resource(group, plural)} "{name}": {why}',
        name=name,
        group=group,
        kind=plural,
        causes=causes or [],
    )


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


_ACCEPTED_BODY_TYPES = (
    "application/json, application/yaml, application/merge-patch+json, "
    "application/json-patch+json, application/strategic-merge-patch+json, "
    "application/apply-patch+yaml, application/vnd.kubernetes.protobuf"
)


_ACCEPTED_CUSTOM_PATCH_TYPES = (
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        f'{_ACCEPTED_BODY_TYPES}; got "{content_type}"',
    )


def unsupported_media_type_message(message: str) -> ApiError:
    """415 with a message of its own (a body type the server knows but cannot read now)."""
    return ApiError(415, "UnsupportedMediaType", message)


def unsupported_patch_type_for_custom() -> ApiError:
    """Strategic merge on a custom resource: it needs a Go struct's patch metadata, which a
    custom resource has not, so the real server lists only the other patch types."""
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        f"{_ACCEPTED_CUSTOM_PATCH_TYPES}",
    )


def invalid(group: str, kind: str, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid: the message lists every cause, as ``kubectl`` prints it."""
    listed = "; ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    return ApiError(
        422,
        "Invalid",
        f'{kind}.{group} "{name}" is invalid: {listed}'
        if group
        else f'{kind} "{name}" is invalid: {listed}',
        name=name,
        group=group,
        kind=kind,
        causes=causes,
    )


def request_entity_too_large(message: str) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", message)


def too_many_requests(message: str, retry_after_seconds: int = 1) -> ApiError:
    return ApiError(429, "TooManyRequests", message, retry_after_seconds=retry_after_seconds)


def internal_error(message: str) -> ApiError:
    return ApiError(500, "InternalError", message)


def service_unavailable(message: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", message)

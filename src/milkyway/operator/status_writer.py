"""Write a resource's status with optimistic concurrency, only when it changed.

Status is written through the ``status`` subresource with the resourceVersion the
reconcile read, so a reconcile based on stale state loses (409) and is simply retried
from fresh state. Writes that would change nothing are skipped: at thousands of
Applications, unconditional writes would be most of the API traffic, and every write
wakes every watcher. A condition keeps its ``lastTransitionTime`` while its status stays
the same, as Kubernetes' ``meta.SetStatusCondition`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from lightkube import ApiError, AsyncClient


class StatusConflict(Exception):
    """The object changed since it was read; reconcile again from fresh state."""


def now_rfc3339(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str, status: bool | str, reason: str, message: str = "", generation: int | None = None
) -> dict[str, Any]:
    """A condition dict (camelCase, as on the wire); ``status`` True/False or a string."""
    value = status if isinstance(status, str) else ("True" if status else "False")
    found: dict[str, Any] = {"type": type_, "status": value, "reason": reason, "message": message}
    if generation is not None:
        found["observedGeneration"] = generation
    return found


def merge_conditions(
    old: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]], now: str
) -> list[dict[str, Any]]:
    """``new`` conditions with ``lastTransitionTime`` carried over where the status held."""
    previous = {c.get("type"): c for c in old}
    merged: list[dict[str, Any]] = []
    for item in new:
        entry = dict(item)
        before = previous.get(entry.get("type"))
        if before is not None and before.get("status") == entry.get("status"):
            entry["lastTransitionTime"] = before.get("lastTransitionTime") or now
        else:
            entry["lastTransitionTime"] = entry.get("lastTransitionTime") or now
        merged.append(entry)
    return merged


def merged_status(
    current: Mapping[str, Any], wanted: Mapping[str, Any], now: str
) -> dict[str, Any]:
    """``wanted`` with conditions merged against ``current``; fields absent stay absent."""
    status = {k: v for k, v in wanted.items() if v is not None}
    if "conditions" in status:
        status["conditions"] = merge_conditions(
            current.get("conditions") or [], status["conditions"], now
        )
    return status


class StatusWriter:
    """Writes ``status`` of objects of one resource class (a lightkube generic resource)."""

    def __init__(self, client: AsyncClient, resource: Any) -> None:
        self._client = client
        self._resource = resource
        self.writes = 0

    async def write(
        self, obj: Mapping[str, Any], wanted: Mapping[str, Any], *, now: str | None = None
    ) -> dict[str, Any] | None:
        """Write ``wanted`` as the status of ``obj`` unless it equals the current one.

        Returns the object as written (``None`` when nothing changed); raises
        :class:`StatusConflict` when ``obj`` is stale.
        """
        current = obj.get("status") or {}
        status = merged_status(current, wanted, now or now_rfc3339())
        if status == current:
            return None
        body = {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "metadata": {
                "name": obj["metadata"]["name"],
                "namespace": obj["metadata"].get("namespace"),
                "resourceVersion": obj["metadata"].get("resourceVersion"),
            },
            "status": status,
        }
        if not body["metadata"]["namespace"]:
            del body["metadata"]["namespace"]
        try:
            written = await self._client.replace(
                self._resource.Status.from_dict(body),
                obj["metadata"]["name"],
                namespace=obj["metadata"].get("namespace"),
            )
        except ApiError as exc:
            if exc.status.code in (404, 409):
                raise StatusConflict(f"{obj['metadata']['name']}: {exc.status.message}") from None
            raise
        self.writes += 1
        return written.to_dict()

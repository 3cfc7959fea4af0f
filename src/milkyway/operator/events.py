"""Kubernetes Events on Milkyway's resources, so ``kubectl describe`` tells their story.

Events are best effort, as in client-go's recorder: failing to record one never fails a
reconcile, it is only logged.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event

from milkyway.kube.errors import TRANSPORT_ERRORS

log = logging.getLogger(__name__)

COMPONENT = "milkyway-operator"


class EventRecorder:
    """Creates core/v1 Events about objects of the management cluster."""

    def __init__(self, client: AsyncClient, component: str = COMPONENT) -> None:
        self._client = client
        self._component = component

    async def record(
        self, obj: Mapping[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None:
        """Record ``reason``/``message`` on ``obj`` (a resource as a dict)."""
        metadata = obj.get("metadata") or {}
        namespace = metadata.get("namespace") or "default"
        now = datetime.now(UTC)
        event = Event(
            metadata=ObjectMeta(
                name=f"{metadata.get('name', 'object')}.{uuid.uuid4().hex[:10]}",
                namespace=namespace,
            ),
            involvedObject=ObjectReference(
                apiVersion=obj.get("apiVersion"),
                kind=obj.get("kind"),
                name=metadata.get("name"),
                namespace=metadata.get("namespace"),
                uid=metadata.get("uid"),
                resourceVersion=metadata.get("resourceVersion"),
            ),
            reason=reason,
            message=message[:1024],
            type="Warning" if warning else "Normal",
            source=EventSource(component=self._component),
            firstTimestamp=now,
            lastTimestamp=now,
            count=1,
            reportingComponent=self._component,
        )
        try:
            await self._client.create(event, namespace=namespace)
        except (ApiError, *TRANSPORT_ERRORS) as exc:
            log.warning("recording event %s on %s failed: %s", reason, metadata.get("name"), exc)

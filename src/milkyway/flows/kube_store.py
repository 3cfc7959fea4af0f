"""The Kubernetes store: one ``FlowRun`` custom resource per run.

Spec and status are separate endpoints, as for every resource with a status
subresource: requests (cancel, approve, …) are written to the spec by the CLI and API,
the engine writes only the status. Both writes carry the resourceVersion that was read,
so the API server itself rejects a write based on stale state (409 Conflict). That is
the fencing between engine replicas: an engine that lost the run learns it from the
conflict, before any effect starts.

Locks (mutexes, concurrency limits) are ConfigMaps holding the list of holders, updated
with the same precondition. Events are core/v1 Events on the FlowRun, so
``kubectl describe flowrun`` shows the run's story.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from lightkube import ApiError
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta as KubeMeta
from lightkube.operators import not_equal
from lightkube.resources.core_v1 import ConfigMap, Event

from milkyway.flows.store import AlreadyExists, Conflict, NotFound, StoreError
from milkyway.kube.cluster_client import ClusterClient
from milkyway.kube.resources import FLOWRUN
from milkyway.model.base import GROUP, VERSION
from milkyway.model.flow import DONE_LABEL, FlowRun

LOCK_LABEL = "milkyway.ebay.com/flow-lock"
LOCK_KEY_ANNOTATION = "milkyway.ebay.com/key"
"""The lock's key (``milkyway/<namespace>/<application>/<component>`` for a component's
mutex) on its ConfigMap, whose name is a hash of it."""


def _error(exc: ApiError, what: str) -> StoreError:
    code = exc.status.code
    if code == 409 and exc.status.reason == "AlreadyExists":
        return AlreadyExists(f"{what}: already exists")
    if code == 409:
        return Conflict(f"{what}: {exc.status.message}")
    if code == 404:
        return NotFound(f"{what}: not found")
    return StoreError(f"{what}: {code} {exc.status.message}")


class KubeStore:
    """FlowRuns in one namespace of the management cluster, through lightkube's async client."""

    wants_progress = True
    """``kubectl get flowruns`` shows ``status.progress``, so every write carries it."""

    def __init__(self, client: ClusterClient, namespace: str = "default") -> None:
        self.client = client
        self.namespace = namespace
        self.writes = 0

    def _wire(self, run: FlowRun) -> dict[str, Any]:
        """The run as sent: defaults left out (they come back on reading) to halve its size."""
        data = run.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
        data["apiVersion"] = run.api_version
        data["kind"] = run.kind
        data["metadata"] = run.metadata.to_wire()
        data["metadata"]["namespace"] = self.namespace
        data.setdefault("status", {})["phase"] = run.status.phase
        return data

    @staticmethod
    def _model(obj: Any) -> FlowRun:
        return FlowRun.model_validate(obj.to_dict())

    async def create(self, run: FlowRun) -> FlowRun:
        data = self._wire(run)
        status = data.pop("status", None)
        try:
            created = await self.client.create(FLOWRUN.from_dict(data), namespace=self.namespace)
        except ApiError as exc:
            raise _error(exc, f"flowrun {run.metadata.name!r}") from None
        self.writes += 1
        stored = self._model(created)
        if status:
            try:
                stored = await self.replace_status(stored.model_copy(update={"status": run.status}))
            except Conflict:
                # An engine found the run without a status first and wrote the same
                # initial status from the spec (see ``Engine.scan``): it is started.
                stored = await self.get(run.metadata.name)
                if not stored.status.snapshot:
                    raise
        return stored

    async def get(self, name: str) -> FlowRun:
        try:
            return self._model(await self.client.get(FLOWRUN, name, namespace=self.namespace))
        except ApiError as exc:
            raise _error(exc, f"flowrun {name!r}") from None

    async def list(self) -> list[FlowRun]:
        try:
            listing = self.client.list(FLOWRUN, namespace=self.namespace)
            return [self._model(obj) async for obj in listing]
        except ApiError as exc:
            raise _error(exc, "list flowruns") from None

    async def list_active(self) -> builtins.list[FlowRun]:
        try:
            listing = self.client.list(
                FLOWRUN, namespace=self.namespace, labels={DONE_LABEL: not_equal("true")}
            )
            return [self._model(obj) async for obj in listing]
        except ApiError as exc:
            raise _error(exc, "list active flowruns") from None

    async def replace(self, run: FlowRun) -> FlowRun:
        data = self._wire(run)
        data.pop("status", None)
        try:
            updated = await self.client.replace(FLOWRUN.from_dict(data))
        except ApiError as exc:
            raise _error(exc, f"flowrun {run.metadata.name!r}") from None
        self.writes += 1
        return self._model(updated)

    async def replace_status(self, run: FlowRun) -> FlowRun:
        data = self._wire(run)
        try:
            updated = await self.client.replace(
                FLOWRUN.Status.from_dict(data), run.metadata.name, namespace=self.namespace
            )
        except ApiError as exc:
            raise _error(exc, f"flowrun {run.metadata.name!r} status") from None
        self.writes += 1
        return self._model(updated)

    async def record_event(self, run: FlowRun, reason: str, message: str, warning: bool) -> None:
        now = datetime.now(UTC)
        event = Event(
            metadata=KubeMeta(
                name=f"{run.metadata.name}.{uuid.uuid4().hex[:10]}", namespace=self.namespace
            ),
            involvedObject=ObjectReference(
                apiVersion=f"{GROUP}/{VERSION}",
                kind="FlowRun",
                name=run.metadata.name,
                namespace=self.namespace,
                uid=run.metadata.uid,
            ),
            reason=reason,
            message=message[:1024],
            type="Warning" if warning else "Normal",
            source=EventSource(component="milkyway-flows"),
            firstTimestamp=now,
            lastTimestamp=now,
            count=1,
        )
        try:
            await self.client.create(event, namespace=self.namespace)
        except ApiError as exc:
            raise _error(exc, f"event on flowrun {run.metadata.name!r}") from None

    # --- locks ----------------------------------------------------------------------------

    @staticmethod
    def _lock_name(key: str) -> str:
        return "milkyway-lock-" + hashlib.sha256(key.encode()).hexdigest()[:20]

    async def acquire(self, key: str, holder: str, limit: int) -> bool:
        name = self._lock_name(key)
        for _ in range(50):
            try:
                lock = await self.client.get(ConfigMap, name, namespace=self.namespace)
            except ApiError as exc:
                if exc.status.code != 404:
                    raise _error(exc, f"lock {key!r}") from None
                fresh = ConfigMap(
                    metadata=KubeMeta(
                        name=name,
                        namespace=self.namespace,
                        labels={LOCK_LABEL: "true"},
                        annotations={LOCK_KEY_ANNOTATION: key},
                    ),
                    data={"holders": json.dumps([holder])},
                )
                try:
                    await self.client.create(fresh, namespace=self.namespace)
                    return True
                except ApiError as create_error:
                    if create_error.status.code == 409:
                        continue
                    raise _error(create_error, f"lock {key!r}") from None
            holders = json.loads((lock.data or {}).get("holders", "[]"))
            if holder in holders:
                return True
            if len(holders) >= limit:
                return False
            lock.data = {"holders": json.dumps([*holders, holder])}
            try:
                await self.client.replace(lock)
                return True
            except ApiError as exc:
                if exc.status.code != 409:
                    raise _error(exc, f"lock {key!r}") from None
        raise Conflict(f"lock {key!r} kept changing")

    async def holders(self, key: str) -> builtins.list[str]:
        try:
            lock = await self.client.get(ConfigMap, self._lock_name(key), namespace=self.namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return []
            raise _error(exc, f"lock {key!r}") from None
        return list(json.loads((lock.data or {}).get("holders", "[]")))

    async def release(self, key: str, holder: str) -> None:
        name = self._lock_name(key)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                lock = await self.client.get(ConfigMap, name, namespace=self.namespace)
            except ApiError as exc:
                if exc.status.code == 404:
                    return
                raise _error(exc, f"lock {key!r}") from None
            holders = json.loads((lock.data or {}).get("holders", "[]"))
            if holder not in holders:
                return
            lock.data = {"holders": json.dumps([h for h in holders if h != holder])}
            try:
                await self.client.replace(lock)
                return
            except ApiError as exc:
                if exc.status.code != 409:
                    raise _error(exc, f"lock {key!r}") from None
        raise Conflict(f"lock {key!r} kept changing")

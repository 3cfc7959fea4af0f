"""Audit records of the FlowRuns a server request caused.

The operator, not the server, starts the runs a change needs, and it copies the request
id onto them only while the server's signed stamp covers it. The server watches FlowRuns
with its own account and appends one record per such run — actor the run's requester,
action ``flowrun``, target ``FlowRun NAMESPACE/NAME``, under the request's id — so a search
by request id shows the request and everything it set going. Appending is idempotent
across replicas and restarts (:meth:`AuditLog.append_new_sync`): each run is recorded once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from lightkube import AsyncClient

from milkyway.kube.informer import Informer
from milkyway.kube.resources import FLOWRUN
from milkyway.security.change_stamp import REQUEST_ID
from milkyway.server.audit.log import AuditLog, AuditRecord

log = logging.getLogger("milkyway.server")
ACTION = "flowrun"


@dataclass(frozen=True)
class RunCause:
    """What the recorder keeps of a FlowRun: enough to write its record, nothing more."""

    namespace: str
    name: str
    request_id: str
    requested_by: str
    flow: str


def run_cause(obj: Any) -> RunCause | None:
    data = obj if isinstance(obj, dict) else obj.to_dict()
    metadata = data.get("metadata") or {}
    request_id = (metadata.get("annotations") or {}).get(REQUEST_ID)
    if not request_id:
        return None
    spec = data.get("spec") or {}
    return RunCause(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        request_id=str(request_id),
        requested_by=str(spec.get("requestedBy", "")),
        flow=str(spec.get("flow", "")),
    )


def run_record(cause: RunCause) -> AuditRecord:
    return AuditRecord(
        request_id=cause.request_id,
        actor=cause.requested_by,
        action=ACTION,
        target=f"FlowRun {cause.namespace}/{cause.name}",
        decision="allowed",
        result=201,
        detail=f"{cause.flow} started by the operator for this request",
    )


class RunRecorder:
    """Watches FlowRuns (the server's own account needs ``list`` and ``watch`` on them)
    and records each one a request caused; :meth:`run` until cancelled."""

    def __init__(self, client: AsyncClient, audit: AuditLog) -> None:
        self._client = client
        self._audit = audit
        self._queue: asyncio.Queue[RunCause] = asyncio.Queue()
        self._seen: set[tuple[str, str]] = set()
        self._informer: Informer | None = None
        self._writing = False
        self.recorded = 0

    def settled(self) -> bool:
        """Listed once, and every run seen so far is recorded (or was already)."""
        synced = self._informer is not None and self._informer.synced.is_set()
        return synced and self._queue.empty() and not self._writing

    def _changed(self, event: str, cause: RunCause | None) -> None:
        if event == "DELETED" or cause is None:
            return
        key = (cause.namespace, cause.name)
        if key not in self._seen:
            self._seen.add(key)
            self._queue.put_nowait(cause)

    async def _write(self) -> None:
        while True:
            cause = await self._queue.get()
            self._writing = True
            try:
                if await asyncio.to_thread(self._audit.append_new_sync, run_record(cause)):
                    self.recorded += 1
            except Exception:
                log.exception("audit record of FlowRun %s/%s failed", cause.namespace, cause.name)
                self._seen.discard((cause.namespace, cause.name))
            finally:
                self._writing = False

    async def run(self) -> None:
        self._informer = Informer(
            self._client, FLOWRUN, on_change=self._changed, transform=run_cause
        )
        writer = asyncio.create_task(self._write(), name="audit-runs-writer")
        try:
            await self._informer.run()
        finally:
            writer.cancel()

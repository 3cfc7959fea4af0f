"""Disk alerts of member agents, turned into a pod condition and Events the planner acts on.

Every ``interval`` the leader asks the agent of every running member pod for its status
(``GET /v1/status`` through ``pods/proxy``), at most ``rate`` agents a second (each
request costs the operator about a millisecond of CPU, so a fleet of 30,000 member pods
asked every 15 s would keep it busy; at 20 a second a round over 30,000 pods takes 25
minutes, over 3,000 two and a half), and compares the worst volume level with the
pod's ``milkyway.ebay.com/DiskAlert`` condition. A changed level is written to the pod's
status (the condition) and recorded as one Event on the pod (``DiskWarning``,
``DiskCritical``, ``DiskFailed``, ``DiskRecovered``); a level that holds writes nothing,
so an alert is reported once however long it lasts, and an operator restart does not
report it again (the condition is the memory). The planner reads the condition: a
critical or failed volume makes the member a candidate for ``replace-member`` (see
:mod:`milkyway.operator.planner.lost`).

Why the operator writes, not the agent: the agent has no Kubernetes credentials. Letting
it patch pod status would need a Role on ``pods/status`` for the whole namespace (RBAC
cannot say "only your own pod"), so one compromised member could mark its neighbours'
disks critical, or Ready. The operator already reaches every agent through the API
server and holds the rights to write conditions and Events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from milkyway.kube.agent_client import AgentClient, AgentError
from milkyway.kube.agent_contract import DISK_ALERT_CONDITION
from milkyway.kube.errors import TRANSPORT_ERRORS
from milkyway.operator.events import EventRecorder

log = logging.getLogger(__name__)

DISK_CONDITION = DISK_ALERT_CONDITION
AGENT_CONTAINER = "milkyway-agent"
LEVELS = ("ok", "warning", "critical", "failed")
REASONS = {"ok": "Ok", "warning": "Warning", "critical": "Critical", "failed": "Failed"}
EVENTS = {
    "ok": "DiskRecovered",
    "warning": "DiskWarning",
    "critical": "DiskCritical",
    "failed": "DiskFailed",
}
DEFAULT_INTERVAL = 15.0
DEFAULT_RATE = 20.0
"""Agents asked per second at most."""
MAX_SILENT_DELAY = 300.0
"""Longest wait before asking again an agent that has not been answering."""


@dataclass(frozen=True)
class DiskLevel:
    """The worst volume of one member as its agent reports it."""

    level: str
    message: str


def worst_volume(status: Mapping[str, Any]) -> DiskLevel:
    """The worst level among the agent's volumes, with that volume's message."""
    worst = DiskLevel("ok", "every volume is below its warning threshold")
    for volume in status.get("volumes") or []:
        level = str(volume.get("level") or "ok")
        if level in LEVELS and LEVELS.index(level) > LEVELS.index(worst.level):
            worst = DiskLevel(level, f"volume {volume.get('volume')}: {volume.get('message')}")
    return worst


def current_level(pod: Mapping[str, Any]) -> str:
    """The level the pod's condition shows (``ok`` without one)."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == DISK_CONDITION:
            reason = condition.get("reason")
            return next((k for k, v in REASONS.items() if v == reason), "ok")
    return "ok"


def condition_patch(
    pod: Mapping[str, Any], found: DiskLevel, now: datetime
) -> dict[str, Any] | None:
    """The strategic-merge status patch recording ``found`` on ``pod`` (conditions merge
    by type, so the kubelet's own are untouched); None when the pod shows it already
    (nothing to write, no Event). A pod that never had an alert gets no ``Ok``."""
    if found.level == current_level(pod):
        return None
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    condition = {
        "type": DISK_CONDITION,
        "status": "False" if found.level == "ok" else "True",
        "reason": REASONS[found.level],
        "message": found.message[:1024],
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
    }
    return {"status": {"conditions": [condition]}}


def watched(pod: Mapping[str, Any]) -> bool:
    """A running pod with an agent container, not being deleted."""
    metadata = pod.get("metadata") or {}
    if metadata.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") != "Running":
        return False
    containers = (pod.get("spec") or {}).get("containers") or []
    return any(c.get("name") == AGENT_CONTAINER for c in containers)


class DiskWatch:
    """Polls the agents of every member cluster the operator is connected to."""

    def __init__(
        self,
        members: Callable[[], Iterable[tuple[str, AsyncClient, Iterable[dict[str, Any]]]]],
        interval: float = DEFAULT_INTERVAL,
        concurrency: int = 16,
        rate: float = DEFAULT_RATE,
    ) -> None:
        """``members``: for each connected member cluster, its name, client and the
        pods the operator owns there (from its cache)."""
        if rate <= 0:
            raise ValueError(f"rate must be positive (agents asked per second), got {rate}")
        self._members = members
        self.interval = interval
        self.rate = rate
        self._limit = asyncio.Semaphore(concurrency)
        self._silent: dict[str, tuple[int, float]] = {}
        """Pods whose agent did not answer (by uid): failures in a row and when to ask
        again, so pods without a reachable agent cost little."""

    async def run(self) -> None:
        while True:
            try:
                await self.once()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad round must not end the watch for good
                log.exception("looking at the agents' disk reports failed")
            await asyncio.sleep(self.interval)

    async def once(self) -> int:
        """One look at every agent; the number of conditions written."""
        now = time.monotonic()
        seen: set[str] = set()
        jobs: list[tuple[str, AsyncClient, dict[str, Any]]] = []
        for cluster, client, pods in self._members():
            for pod in pods:
                uid = str(pod["metadata"].get("uid") or "")
                seen.add(uid)
                if watched(pod) and self._silent.get(uid, (0, 0.0))[1] <= now:
                    jobs.append((cluster, client, pod))
        for uid in set(self._silent) - seen:
            del self._silent[uid]
        started = time.monotonic()
        asked: list[asyncio.Task[int]] = []
        try:
            for i, job in enumerate(jobs):
                delay = started + i / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                asked.append(asyncio.create_task(self._member(*job)))
            written = await asyncio.gather(*asked)
        finally:
            for task in asked:
                task.cancel()
        return sum(written)

    async def _member(self, cluster: str, client: AsyncClient, pod: dict[str, Any]) -> int:
        metadata = pod["metadata"]
        namespace, name = metadata.get("namespace") or "default", metadata["name"]
        async with self._limit:
            try:
                status = await AgentClient(client, namespace, name).status()
            except AgentError as error:
                uid = str(metadata.get("uid") or "")
                failures = self._silent.get(uid, (0, 0.0))[0] + 1
                delay = min(self.interval * 2 ** min(failures, 10), MAX_SILENT_DELAY)
                self._silent[uid] = (failures, time.monotonic() + delay)
                log.debug("agent of %s/%s in %s: %s", namespace, name, cluster, error)
                return 0
            self._silent.pop(str(metadata.get("uid") or ""), None)
            found = worst_volume(status)
            patch = condition_patch(pod, found, datetime.now(UTC))
            if patch is None:
                return 0
            try:
                await client.patch(
                    Pod.Status, name, patch, namespace=namespace, patch_type=PatchType.STRATEGIC
                )
            except (ApiError, *TRANSPORT_ERRORS) as error:
                log.warning("disk condition of %s/%s in %s: %s", namespace, name, cluster, error)
                return 0
            message = f"{found.message} (reported by the member's agent)"
            await EventRecorder(client).record(
                {"apiVersion": "v1", "kind": "Pod", "metadata": metadata},
                EVENTS[found.level],
                message,
                warning=found.level != "ok",
            )
            log.info("%s/%s in %s: disk %s: %s", namespace, name, cluster, found.level, message)
            return 1

"""What every lifecycle task shares: reaching a member cluster and reading its pods.

A member cluster that does not answer (connection refused or reset, a timeout, a 502/503/
504 from a proxy in front of it) is *unreachable*: the task heartbeats and waits, polling,
for as long as it takes. Time spent unreachable does not count against a task's own
timeout, so a cluster cut off mid-upgrade pauses the flow instead of failing it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from lightkube import codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import StatefulSet
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType
from pydantic import BaseModel, ConfigDict

from milkyway.flows.tasks import FatalError, RetryableError, TaskContext
from milkyway.kube.errors import is_unreachable
from milkyway.kube.labels import CONFIG_HASH, MEMBER

FIELD_MANAGER = "milkyway-operator"
UNREACHABLE_POLL = 1.0
POLL_INTERVAL = 0.25
"""Seconds between two reads of a waiting task: a small fraction of a pod restart, so a
rolling operation stays close to the bound its disruption policy sets."""
VERSION_LABEL = "app.kubernetes.io/version"
DISRUPTING_ANNOTATION = "milkyway.ebay.com/disrupting-until"
"""On a member's pod: a disruption gate let it go down; the value is the claim's expiry
(seconds since the epoch). Other gates count the member as down while the claim holds."""
CLAIM_TTL = 120.0
"""Seconds a gate's claim holds: far longer than the step from gate to pod deletion, short
enough that a claim left by a crashed operator does not block the component for long."""

T = TypeVar("T")


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def api_failure(exc: ApiError, what: str) -> Exception:
    code = exc.status.code or 0
    message = f"{what}: {code} {exc.status.message}"
    if code in (408, 409, 429) or code >= 500:
        return RetryableError(message)
    return FatalError(message)


class Clock:
    """A deadline that stops running while the cluster is unreachable."""

    def __init__(self, timeout: float) -> None:
        self.remaining = timeout
        self._last = time.monotonic()

    def tick(self, counted: bool = True) -> None:
        now = time.monotonic()
        if counted:
            self.remaining -= now - self._last
        self._last = now

    @property
    def expired(self) -> bool:
        return self.remaining <= 0


def still_waiting(ctx: TaskContext, clock: Clock, waiting: str, expired: str) -> None:
    """One more round of a task waiting for a state: heartbeat ``waiting`` (progress, and
    the step's heartbeat timeout kept away); past the clock's deadline, fail the attempt
    with ``expired`` (retryable: the next attempt looks again)."""
    ctx.heartbeat(waiting)
    clock.tick()
    if clock.expired:
        raise RetryableError(expired)


async def call(
    ctx: TaskContext,
    cluster: str,
    what: str,
    action: Callable[[], Awaitable[T]],
    clock: Clock | None = None,
) -> T:
    """Run ``action`` against ``cluster``; while it is unreachable, heartbeat and retry
    (that time is not counted on ``clock``)."""
    client_error: Exception | None = None
    while True:
        if clock is not None:
            clock.tick()
        try:
            return await action()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            client_error = exc
        ctx.heartbeat(f"cluster {cluster} unreachable ({what}: {client_error}); waiting")
        await asyncio.sleep(UNREACHABLE_POLL)
        if clock is not None:
            clock.tick(counted=False)


def to_dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def pod_ready(pod: Mapping[str, Any]) -> bool:
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if metadata.get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def pod_current(pod: Mapping[str, Any], config_hash: str, version: str) -> bool:
    """The pod runs the expected restart hash and version (empty: not checked)."""
    metadata = pod.get("metadata") or {}
    if config_hash and (metadata.get("annotations") or {}).get(CONFIG_HASH) != config_hash:
        return False
    return not version or (metadata.get("labels") or {}).get(VERSION_LABEL) == version


def member_of(pod: Mapping[str, Any], name: str, member_id: int) -> bool:
    """``pod`` is the member called ``name`` (pod name) or with identity ``member_id``."""
    metadata = pod.get("metadata") or {}
    if metadata.get("name") == name:
        return True
    return member_id >= 0 and (metadata.get("labels") or {}).get(MEMBER) == str(member_id)


async def list_objects(
    ctx: TaskContext,
    cluster: str,
    resource: Any,
    namespace: str | None,
    selector: Mapping[str, str],
    clock: Clock | None = None,
) -> list[dict[str, Any]]:
    client = ctx.client(cluster)

    async def read() -> list[dict[str, Any]]:
        return [
            to_dict(obj)
            async for obj in client.list(resource, namespace=namespace, labels=dict(selector))
        ]

    return await call(ctx, cluster, f"list {resource.__name__}", read, clock)


async def list_pods(
    ctx: TaskContext,
    cluster: str,
    namespace: str,
    selector: Mapping[str, str],
    clock: Clock | None = None,
) -> list[dict[str, Any]]:
    return await list_objects(ctx, cluster, Pod, namespace, selector, clock)


async def call_unless_gone(
    ctx: TaskContext, cluster: str, what: str, action: Callable[[], Awaitable[T]], gone: T
) -> T:
    """:func:`call` for an action on one object whose absence is an answer, not a failure:
    a 404 returns ``gone``; an unreachable cluster waits as in :func:`call`; any other API
    error fails the attempt naming ``what``."""

    async def attempt() -> T:
        try:
            return await action()
        except ApiError as exc:
            if exc.status.code == 404:
                return gone
            if is_unreachable(exc):
                raise
            raise api_failure(exc, what) from exc

    return await call(ctx, cluster, what, attempt)


async def delete(
    ctx: TaskContext,
    cluster: str,
    resource: Any,
    name: str,
    namespace: str | None,
    grace_period: int | None = None,
) -> bool:
    """Delete one object; already gone is success. True if this call deleted it."""
    client = ctx.client(cluster)

    async def remove() -> bool:
        await client.delete(resource, name, namespace=namespace, grace_period=grace_period)
        return True

    return await call_unless_gone(ctx, cluster, f"delete {resource.__name__}/{name}", remove, False)


async def annotate(
    ctx: TaskContext,
    cluster: str,
    name: str,
    namespace: str,
    annotations: Mapping[str, str | None],
    resource: Any = Pod,
) -> bool:
    """Merge-patch an object's annotations (a pod's unless ``resource`` says otherwise;
    ``None`` removes one); an object already gone is False, not an error."""
    client = ctx.client(cluster)
    patch = {"metadata": {"annotations": dict(annotations)}}

    async def write() -> bool:
        await client.patch(resource, name, patch, namespace=namespace, patch_type=PatchType.MERGE)
        return True

    what = f"annotate {resource.__name__}/{name}"
    return await call_unless_gone(ctx, cluster, what, write, False)


def keep_immutable(manifest: dict[str, Any], live: Mapping[str, Any] | None) -> dict[str, Any]:
    """``manifest`` with the live StatefulSet's claim templates, which Kubernetes never
    lets change: a new volume size or class needs a member replacement, not an update."""
    if live is None or manifest.get("kind") != "StatefulSet":
        return manifest
    templates = ((live.get("spec") or {}).get("volumeClaimTemplates")) or []
    kept = [{k: v for k, v in t.items() if k != "status"} for t in templates]
    return {**manifest, "spec": {**manifest["spec"], "volumeClaimTemplates": kept}}


async def apply(
    ctx: TaskContext,
    cluster: str,
    manifests: list[dict[str, Any]],
    namespace: str | None,
    live_statefulsets: Mapping[str, dict[str, Any] | None] | None = None,
) -> list[str]:
    """Server-side apply ``manifests`` (field manager ``milkyway-operator``, forced).

    A StatefulSet keeps its live claim templates; ``live_statefulsets`` (by name, ``None``
    for absent) are ones the caller has just read, so they are not read again."""
    client = ctx.client(cluster)
    known = live_statefulsets or {}
    applied = []
    for manifest in manifests:
        kind = manifest.get("kind")
        name = (manifest.get("metadata") or {}).get("name", "")
        if kind == "StatefulSet":
            live = (
                known[name]
                if name in known
                else await exists(
                    ctx,
                    cluster,
                    StatefulSet,
                    name,
                    manifest["metadata"].get("namespace") or namespace,
                )
            )
            manifest = keep_immutable(manifest, live)
        obj = codecs.from_dict(manifest)

        async def put(obj: Any = obj, kind: Any = kind, name: str = name) -> None:
            try:
                await client.apply(obj, field_manager=FIELD_MANAGER, force=True)
            except ApiError as exc:
                if is_unreachable(exc):
                    raise
                raise api_failure(exc, f"apply {kind}/{name}") from exc

        await call(ctx, cluster, f"apply {kind}/{name}", put)
        applied.append(f"{kind}/{name}")
    ctx.heartbeat(f"applied {len(applied)} object(s) to {cluster}")
    return applied


async def exists(
    ctx: TaskContext, cluster: str, resource: Any, name: str, namespace: str | None
) -> dict[str, Any] | None:
    client = ctx.client(cluster)

    async def read() -> dict[str, Any] | None:
        return to_dict(await client.get(resource, name, namespace=namespace))

    return await call_unless_gone(ctx, cluster, f"get {resource.__name__}/{name}", read, None)

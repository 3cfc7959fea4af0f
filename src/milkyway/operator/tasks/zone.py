"""Tasks over one component in one zone: apply, wait Ready, scale in, reload, delete all."""

from __future__ import annotations

import asyncio
from typing import Any

from lightkube.resources.apps_v1 import Deployment, ReplicaSet, StatefulSet
from lightkube.resources.core_v1 import (
    ConfigMap,
    Namespace,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    Service,
)
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.types import PatchType
from pydantic import Field

from milkyway.flows.tasks import FatalError, RetryableError, TaskContext, task
from milkyway.kube.agent_client import AgentClient
from milkyway.kube.agent_keys import ensure_signing_key
from milkyway.operator.render_snapshot import SnapshotRefs
from milkyway.operator.tasks.agent_reload import (
    ReloadTarget,
    config_map_of,
    reload_member,
    zone_reload_target,
)
from milkyway.operator.tasks.common import (
    POLL_INTERVAL,
    Clock,
    Params,
    apply,
    call,
    delete,
    exists,
    list_objects,
    list_pods,
    member_of,
    pod_current,
    pod_ready,
    still_waiting,
)
from milkyway.operator.tasks.namespace import created_namespace
from milkyway.operator.tasks.secret_rotation import (
    delete_generated_secrets,
    ensure_generated_secrets,
)
from milkyway.operator.tasks.watch import PodWatch

RELOAD_ANNOTATION = "milkyway.ebay.com/config-reloaded"
"""Set on each member once a hot-reloadable config change reached it (its agent ran the
type's ``configReloadAction``, when the type declares one): the config hash it holds."""

_KINDS: dict[str, Any] = {
    "StatefulSet": StatefulSet,
    "Deployment": Deployment,
    "Pod": Pod,
    "PersistentVolumeClaim": PersistentVolumeClaim,
    "PersistentVolume": PersistentVolume,
}


class ZoneParams(Params):
    cluster: str
    namespace: str = "default"
    selector: dict[str, str]
    timeout: float = Field(default=600.0, gt=0)
    interval: float = Field(default=POLL_INTERVAL, gt=0)


class ApplyZoneParams(SnapshotRefs, Params):
    cluster: str
    namespace: str = "default"
    manifests: list[dict[str, Any]] = Field(default_factory=list)
    member_manifests: list[dict[str, Any]] = Field(default_factory=list, alias="memberManifests")
    """Per-member workloads (and claims, volumes): created when missing, never changed
    here, since changing one restarts its member (that is a restart step's job)."""


WORKLOAD_KINDS = frozenset({"StatefulSet", "Deployment", "ReplicaSet", "DaemonSet", "Pod"})
"""Applied after the zone's other objects, so a pod never starts before its config."""


@task("milkyway.apply-zone")
async def apply_zone(params: ApplyZoneParams, ctx: TaskContext) -> dict[str, Any]:
    """Server-side apply a zone's objects; create missing per-member objects. The
    namespace is created first (marked as Milkyway's, so decommission may remove it)
    when the member cluster does not have it yet (read together
    with the live StatefulSets, whose claim templates are kept); then the objects that
    configure the workloads (ConfigMaps, Services, budgets) all at once, then the workloads
    all at once: one round trip per stage, not per object."""
    params = await params.with_manifests(ctx)
    statefulsets = [
        (m["metadata"]["name"], m["metadata"].get("namespace") or params.namespace)
        for m in params.manifests
        if m.get("kind") == "StatefulSet"
    ]
    found_namespace, *found = await asyncio.gather(
        exists(ctx, params.cluster, Namespace, params.namespace, None),
        *(exists(ctx, params.cluster, StatefulSet, n, ns) for n, ns in statefulsets),
    )
    if found_namespace is None:
        await apply(ctx, params.cluster, [created_namespace(params.namespace)], None)
    client = ctx.client(params.cluster)
    await call(
        ctx,
        params.cluster,
        f"publish the agent keys of {params.namespace}",
        lambda: ensure_signing_key(client, params.namespace),
    )
    await ensure_generated_secrets(ctx, params.cluster, params.namespace, params.manifests)
    live = {name: obj for (name, _), obj in zip(statefulsets, found, strict=True)}
    applied: list[str] = []
    for stage in (
        [m for m in params.manifests if m.get("kind") not in WORKLOAD_KINDS],
        [m for m in params.manifests if m.get("kind") in WORKLOAD_KINDS],
    ):
        done = await asyncio.gather(
            *(apply(ctx, params.cluster, [m], params.namespace, live) for m in stage)
        )
        applied.extend(name for names in done for name in names)
    created = []
    for manifest in params.member_manifests:
        kind = manifest.get("kind", "")
        metadata = manifest.get("metadata") or {}
        resource = _KINDS.get(kind)
        namespace = metadata.get("namespace") if kind != "PersistentVolume" else None
        if resource is not None and await exists(
            ctx, params.cluster, resource, metadata.get("name", ""), namespace
        ):
            continue
        created.extend(await apply(ctx, params.cluster, [manifest], params.namespace))
    return {"applied": applied, "created": created}


class WaitZoneParams(ZoneParams):
    replicas: int = Field(ge=0)
    config_hash: str = Field(default="", alias="configHash")
    version: str = ""
    require_updated: bool = Field(default=False, alias="requireUpdated")
    """Also require every live member to run ``configHash`` and ``version``."""
    progress_deadline: float = Field(default=600.0, gt=0, alias="progressDeadline")
    """Seconds without one more member becoming Ready before the wait gives up for good
    (not retried), naming what holds the members back: a provision that can never
    finish (no node fits, a bad storage class) fails instead of holding the component."""


@task("milkyway.wait-zone-ready")
async def wait_zone_ready(params: WaitZoneParams, ctx: TaskContext) -> dict[str, Any]:
    """Wait until ``replicas`` members of the zone are Ready (and, if asked, all current).

    Ready is the pod's Ready condition, which the kubelet sets from the type's readiness
    probe; "current" is the restart hash and version the member runs. A watch of the
    zone's pods wakes the wait (see :mod:`.watch`)."""
    clock = Clock(params.timeout)
    progress = Clock(params.progress_deadline)
    best = -1
    async with PodWatch(ctx, clock) as watch:
        while True:
            pods = await watch.list(params.cluster, params.namespace, params.selector)
            live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
            ready = [p for p in live if pod_ready(p)]
            if len(ready) > best:
                best = len(ready)
                progress = Clock(params.progress_deadline)
            current = [p for p in ready if pod_current(p, params.config_hash, params.version)]
            stale = [p for p in live if not pod_current(p, params.config_hash, params.version)]
            done = len(ready) >= params.replicas
            if params.require_updated:
                done = len(current) >= params.replicas and not stale
            detail = f"{len(ready)}/{params.replicas} Ready, {len(current)} current"
            if done:
                return {"ready": len(ready), "current": len(current)}
            progress.tick()
            if progress.expired:
                raise FatalError(
                    f"zone in {params.cluster}: no member became Ready for "
                    f"{params.progress_deadline:g}s ({detail}): {held_back(live)}"
                )
            still_waiting(
                ctx,
                clock,
                f"{params.cluster}: {detail}",
                f"zone in {params.cluster} not Ready after {params.timeout:g}s: {detail}",
            )
            await watch.wait(params.interval)


def held_back(pods: list[dict[str, Any]]) -> str:
    """Why members are not Ready, from their pods: unschedulable, waiting containers
    (image pull, crash loop), or no pod at all."""
    reasons: list[str] = []
    for pod in pods:
        if pod_ready(pod):
            continue
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        scheduled = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {}
        )
        waiting = [
            (c.get("state") or {}).get("waiting") or {}
            for c in status.get("containerStatuses") or []
        ]
        if scheduled.get("status") == "False":
            reasons.append(f"{name} {scheduled.get('reason')}: {scheduled.get('message')}")
        elif any(w.get("reason") for w in waiting):
            w = next(w for w in waiting if w.get("reason"))
            reasons.append(f"{name} {w.get('reason')}: {w.get('message') or ''}".rstrip(": "))
        else:
            reasons.append(f"{name} {status.get('phase') or 'Pending'}")
    if not pods:
        return "no pod was created (see the workload's and its claims' events)"
    return "; ".join(reasons[:3]) + (f"; {len(reasons) - 3} more" if len(reasons) > 3 else "")


class ReloadZoneParams(ZoneParams):
    config_map_hash: str = Field(alias="configMapHash")


@task("milkyway.reload-zone")
async def reload_zone(params: ReloadZoneParams, ctx: TaskContext) -> dict[str, Any]:
    """Make every member read the zone's changed config without a restart.

    When the type declares a ``configReloadAction`` each member's agent runs it (through
    ``pods/proxy``, with a token signed for that pod) once the pod sees the new files, and
    must report that version applied; a reload the software rejects fails the step with
    the agent's message. Each member done is then annotated with the ConfigMap's hash, so
    a retried or repeated step skips it."""
    client = ctx.client(params.cluster)
    clock = Clock(params.timeout)
    pods = await list_pods(ctx, params.cluster, params.namespace, params.selector)
    targets: dict[str, ReloadTarget] = {}
    signalled, reloaded = [], []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        name = metadata["name"]
        if (metadata.get("annotations") or {}).get(RELOAD_ANNOTATION) == params.config_map_hash:
            continue
        config_map = config_map_of(pod)
        if config_map is not None and config_map not in targets:
            targets[config_map] = await zone_reload_target(
                ctx, params.cluster, params.namespace, config_map, params.config_map_hash
            )
        target = targets.get(config_map or "")
        if target is not None and target.action is not None:
            agent = AgentClient(client, params.namespace, name)
            reloaded.append(await reload_member(ctx, agent, target, clock, params.interval))
        patch = {"metadata": {"annotations": {RELOAD_ANNOTATION: params.config_map_hash}}}

        async def signal(name: str = name, patch: dict = patch) -> None:
            await client.patch(
                Pod, name, patch, namespace=params.namespace, patch_type=PatchType.MERGE
            )

        await call(ctx, params.cluster, f"signal {name}", signal)
        signalled.append(name)
    return {"signalled": signalled, "reloaded": reloaded}


class Removed(Params):
    pod: str = ""
    claim: str = ""
    volume: str = ""
    workload: str = ""
    member_id: int = Field(default=-1, alias="memberId")


class ScaleZoneParams(SnapshotRefs, ZoneParams):
    manifests: list[dict[str, Any]] = Field(default_factory=list)
    removed: list[Removed] = Field(default_factory=list)


@task("milkyway.scale-in-zone")
async def scale_in_zone(params: ScaleZoneParams, ctx: TaskContext) -> dict[str, Any]:
    """Remove the zone's surplus members, highest identities first, then their volumes.

    Applying the zone's objects lowers the StatefulSet's replicas (its controller removes
    the highest ordinals); per-member workloads are deleted one by one. Claims are deleted
    only once their member's pod is gone, and the volumes they were bound to after that."""
    params = await params.with_manifests(ctx)
    await apply(ctx, params.cluster, params.manifests, params.namespace)
    for item in params.removed:
        if item.workload:
            await delete(ctx, params.cluster, Deployment, item.workload, params.namespace)
        if item.pod and not item.workload:
            await delete(ctx, params.cluster, Pod, item.pod, params.namespace)
    clock = Clock(params.timeout)
    while True:
        pods = await list_pods(ctx, params.cluster, params.namespace, params.selector, clock)
        left = [
            p["metadata"]["name"]
            for p in pods
            for item in params.removed
            if (item.pod or item.member_id >= 0) and member_of(p, item.pod, item.member_id)
        ]
        if not left:
            break
        still_waiting(
            ctx,
            clock,
            f"waiting for {', '.join(sorted(set(left)))} to stop",
            f"members still running after {params.timeout:g}s: {left}",
        )
        await asyncio.sleep(params.interval)
    volumes = []
    for item in params.removed:
        if not item.claim:
            continue
        claim = await exists(
            ctx, params.cluster, PersistentVolumeClaim, item.claim, params.namespace
        )
        bound = ((claim or {}).get("spec") or {}).get("volumeName")
        await delete(ctx, params.cluster, PersistentVolumeClaim, item.claim, params.namespace)
        volumes.extend(v for v in (bound, item.volume) if v)
    await _delete_volumes(ctx, params.cluster, volumes, params.interval, clock)
    return {"removed": [i.pod or i.workload or i.claim for i in params.removed], "volumes": volumes}


async def _delete_volumes(
    ctx: TaskContext, cluster: str, volumes: list[str], interval: float, clock: Clock
) -> None:
    """Delete released volumes (a Retain volume outlives its claim; nothing else frees it)."""
    for name in sorted(set(volumes)):
        while True:
            volume = await exists(ctx, cluster, PersistentVolume, name, None)
            if volume is None:
                break
            claim_ref = (volume.get("spec") or {}).get("claimRef")
            phase = (volume.get("status") or {}).get("phase")
            if phase != "Bound" or claim_ref is None:
                await delete(ctx, cluster, PersistentVolume, name, None)
                break
            still_waiting(
                ctx,
                clock,
                f"waiting for volume {name} to be released",
                f"volume {name} still bound",
            )
            await asyncio.sleep(interval)


class DeleteZoneParams(ZoneParams):
    pass


_WORKLOADS = (StatefulSet, Deployment, ReplicaSet, Pod)
_CONFIG_SERVICES_BUDGETS = (ConfigMap, Service, PodDisruptionBudget)


@task("milkyway.delete-zone")
async def delete_zone(params: DeleteZoneParams, ctx: TaskContext) -> dict[str, Any]:
    """Delete every object of the component in the zone: workloads first, then, once no
    pod is left, claims and the volumes they were bound to, then config, services and
    budgets. Succeeds only when a final listing finds nothing labelled for the zone."""
    cluster, namespace, selector = params.cluster, params.namespace, params.selector
    clock = Clock(params.timeout)
    claims: dict[str, str] = {}
    for resource in _WORKLOADS:
        for obj in await list_objects(ctx, cluster, resource, namespace, selector, clock):
            name = obj["metadata"]["name"]
            if resource is StatefulSet:
                for claim in await list_objects(
                    ctx, cluster, PersistentVolumeClaim, namespace, {}, clock
                ):
                    if claim["metadata"]["name"].startswith(f"data-{name}-"):
                        claims[claim["metadata"]["name"]] = (claim.get("spec") or {}).get(
                            "volumeName"
                        ) or ""
            await delete(ctx, cluster, resource, name, namespace)
    while pods := await list_pods(ctx, cluster, namespace, selector, clock):
        still_waiting(
            ctx,
            clock,
            f"waiting for {len(pods)} pod(s) to stop",
            f"{len(pods)} pod(s) still running in {cluster}",
        )
        await asyncio.sleep(params.interval)
    for claim in await list_objects(ctx, cluster, PersistentVolumeClaim, namespace, selector):
        claims[claim["metadata"]["name"]] = (claim.get("spec") or {}).get("volumeName") or ""
    for name in claims:
        await delete(ctx, cluster, PersistentVolumeClaim, name, namespace)
    volumes = [v for v in claims.values() if v]
    volumes.extend(
        v["metadata"]["name"]
        for v in await list_objects(ctx, cluster, PersistentVolume, None, selector)
    )
    await _delete_volumes(ctx, cluster, volumes, params.interval, clock)
    for resource in _CONFIG_SERVICES_BUDGETS:
        for obj in await list_objects(ctx, cluster, resource, namespace, selector):
            await delete(ctx, cluster, resource, obj["metadata"]["name"], namespace)
    left = []
    for resource in (*_WORKLOADS, PersistentVolumeClaim, *_CONFIG_SERVICES_BUDGETS):
        left.extend(
            f"{resource.__name__}/{o['metadata']['name']}"
            for o in await list_objects(ctx, cluster, resource, namespace, selector)
        )
    left.extend(
        f"PersistentVolume/{o['metadata']['name']}"
        for o in await list_objects(ctx, cluster, PersistentVolume, None, selector)
    )
    if left:
        raise RetryableError(f"still present in {cluster}: {', '.join(left)}")
    secrets = await delete_generated_secrets(ctx, cluster, namespace, dict(selector))
    return {"claims": sorted(claims), "volumes": sorted(set(volumes)), "secrets": secrets}


__all__ = [
    "RELOAD_ANNOTATION",
    "apply_zone",
    "delete_zone",
    "reload_zone",
    "scale_in_zone",
    "wait_zone_ready",
]

"""Tasks over one member: the live disruption gate, restart, health, replacement."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Node, PersistentVolume, PersistentVolumeClaim, Pod
from pydantic import Field

from milkyway.flows.tasks import FatalError, RetryableError, TaskContext, task
from milkyway.kube.agent_contract import DISK_ALERT_CONDITION
from milkyway.operator.observe import FRESH_VOLUME
from milkyway.operator.render_snapshot import SnapshotRefs
from milkyway.operator.tasks.common import (
    CLAIM_TTL,
    DISRUPTING_ANNOTATION,
    POLL_INTERVAL,
    Clock,
    Params,
    annotate,
    apply,
    delete,
    exists,
    list_pods,
    member_of,
    pod_current,
    pod_ready,
    still_waiting,
)
from milkyway.operator.tasks.watch import PodWatch


class MemberParams(SnapshotRefs, Params):
    """A member as the planner describes it (one item of a flow's ``members``)."""

    name: str
    cluster: str
    namespace: str = "default"
    workload: str = "statefulset"
    selector: dict[str, str]
    member_id: int = Field(default=-1, alias="memberId")
    config_hash: str = Field(default="", alias="configHash")
    version: str = ""
    claim: str = ""
    volume: str = ""
    manifests: list[dict[str, Any]] = Field(default_factory=list)
    """The member's own objects (per-member patterns): claim, volume, Deployment or Pod."""
    restart_before: str = Field(default="", alias="restartBefore")
    """RFC 3339: a pod created before this time is restarted even if it is current (a
    requested restart); empty: only a pod off the desired hash or version is."""
    timeout: float = Field(default=600.0, gt=0)
    interval: float = Field(default=POLL_INTERVAL, gt=0)


async def _member_pods(ctx: TaskContext, m: MemberParams, clock: Clock) -> list[dict[str, Any]]:
    pods = await list_pods(ctx, m.cluster, m.namespace, m.selector, clock)
    return [p for p in pods if member_of(p, m.name, m.member_id)]


def _live(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]


async def _wait_member(
    ctx: TaskContext,
    m: MemberParams,
    clock: Clock,
    not_uids: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Wait until the member has a Ready pod running the expected hash and version (and,
    after a restart, a pod other than the ones in ``not_uids``). The zone's pods are
    watched, so the next wave starts as soon as the member is back, without a listing
    in between (the health step that follows reads the API server afresh)."""
    async with PodWatch(ctx, clock) as watch:
        listed = await watch.list(m.cluster, m.namespace, m.selector)
        while True:
            pods = _live([p for p in listed if member_of(p, m.name, m.member_id)])
            for pod in pods:
                uid = pod["metadata"].get("uid", "")
                if (
                    uid not in not_uids
                    and pod_ready(pod)
                    and pod_current(pod, m.config_hash, m.version)
                ):
                    return pod
            state = ", ".join(
                f"{p['metadata']['name']} {(p.get('status') or {}).get('phase')}" for p in pods
            )
            still_waiting(
                ctx,
                clock,
                f"{m.name}: waiting for Ready ({state or 'no pod yet'})",
                f"member {m.name} not Ready after {m.timeout:g}s ({state})",
            )
            read = watch.pods if await watch.wait(m.interval) else watch.list
            listed = await read(m.cluster, m.namespace, m.selector)


class GateZone(Params):
    cluster: str
    namespace: str = "default"
    selector: dict[str, str]
    expected: int = Field(ge=0)


class GateParams(Params):
    zones: list[GateZone]
    max_unavailable: int = Field(alias="maxUnavailable", ge=0)
    member: str = ""
    """The member about to go down (not counted as already down)."""
    member_id: int = Field(default=-1, alias="memberId")
    cluster: str = ""
    """The member's cluster: with it, the gate claims the pod named ``member`` before its
    first count (one listing of every zone fewer before each restart); without it, or if
    no pod has that name, it finds the member's pods in its first count."""
    namespace: str = "default"
    one_zone: bool = Field(default=False, alias="oneZone")
    """The policy takes whole zones down (``zone``): also wait while a member of another
    zone than this member's is down or claimed, so two zones are never down at once."""
    timeout: float = Field(default=600.0, gt=0)
    interval: float = Field(default=POLL_INTERVAL, gt=0)


@dataclass(frozen=True)
class Survey:
    """What the gate counted: members other than its own down or claimed, in all and in
    zones other than its member's; the member's live pods and whether it is Ready."""

    down: int
    elsewhere: int
    mine: list[dict[str, Any]]
    member_ready: bool

    def room(self, params: GateParams) -> bool:
        """Taking the member down keeps the policy: within the budget, and (``oneZone``)
        no other zone has a member down."""
        return self.down + 1 <= params.max_unavailable and not (params.one_zone and self.elsewhere)


def _claimed(pod: dict[str, Any], now: float) -> bool:
    """Another gate let this pod's member go: it counts as down until the claim expires
    (the restart deletes the pod, and its replacement carries no claim)."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(DISRUPTING_ANNOTATION)
    try:
        return value is not None and float(value) > now
    except ValueError:
        return False


async def _claim(ctx: TaskContext, pods: list[dict[str, Any]], value: str | None) -> None:
    """Set (or with ``None`` drop) the disruption claim on the member's live pods."""
    for pod in pods:
        await annotate(
            ctx,
            pod["cluster"],
            pod["metadata"]["name"],
            pod["namespace"],
            {DISRUPTING_ANNOTATION: value},
        )


async def _survey(params: GateParams, watch: PodWatch) -> Survey:
    """Count the members other than ``params.member`` that are down or claimed by another
    gate, in all and outside the member's zone. The zones are listed at once: the count
    is as fresh as the slowest cluster's answer, not the sum of them."""
    expected = sum(zone.expected for zone in params.zones)
    listings = await asyncio.gather(
        *(watch.list(zone.cluster, zone.namespace, zone.selector) for zone in params.zones)
    )
    now = time.time()
    up = 0
    mine: list[dict[str, Any]] = []
    member_ready = False
    short: list[int] = []
    home: int | None = None
    for index, (zone, pods) in enumerate(zip(params.zones, listings, strict=True)):
        zone_up = 0
        for pod in pods:
            if member_of(pod, params.member, params.member_id):
                home = index
                member_ready = member_ready or pod_ready(pod)
                if not (pod.get("metadata") or {}).get("deletionTimestamp"):
                    mine.append({**pod, "cluster": zone.cluster, "namespace": zone.namespace})
            elif pod_ready(pod) and not _claimed(pod, now):
                zone_up += 1
        up += zone_up
        short.append(max(0, zone.expected - zone_up))
    elsewhere = sum(n for index, n in enumerate(short) if index != home)
    return Survey(max(0, expected - 1 - up), elsewhere, mine, member_ready)


@task("milkyway.disruption-gate")
async def disruption_gate(params: GateParams, ctx: TaskContext) -> dict[str, Any]:
    """Wait until taking ``member`` down keeps the component within its disruption policy.

    Re-read right before each restart, across every zone: members down for any reason
    (crashed, evicted, another restart in flight) count, so the gate holds even when the
    world changed since the flow was planned. Gates running at once cannot both pass on
    the same room: each first claims its member (a pod annotation with an expiry), then
    counts every other member that is short of Ready *or claimed*; one that finds too
    little room drops its claim and waits, and claims again only once a count finds room.
    Whichever gate reads last sees the other's claim, so concurrent restarts never exceed
    the budget. A member that is already down passes at once: restarting it takes nothing
    more down (and is how it gets repaired)."""
    clock = Clock(params.timeout)
    claimed = bool(params.cluster and params.member) and await annotate(
        ctx, params.cluster, params.member, params.namespace, {DISRUPTING_ANNOTATION: _expiry()}
    )
    async with PodWatch(ctx, clock) as watch:
        while True:
            seen = await _survey(params, watch)
            if not claimed and seen.member_ready and seen.room(params):
                await _claim(ctx, seen.mine, _expiry())
                claimed = True
                seen = await _survey(params, watch)
            down = seen.down
            if not seen.member_ready:
                return {"down": down, "maxUnavailable": params.max_unavailable, "memberDown": True}
            if claimed:
                if seen.room(params):
                    return {"down": down, "maxUnavailable": params.max_unavailable}
                await _claim(ctx, seen.mine, None)
                claimed = False
            where = f" ({seen.elsewhere} in other zones)" if params.one_zone else ""
            still_waiting(
                ctx,
                clock,
                f"{down} other member(s) down or restarting{where}, "
                f"{params.max_unavailable} allowed: {params.member} waits",
                f"disruption gate: {down} member(s) down{where}, at most "
                f"{params.max_unavailable} may be; not restarting {params.member}",
            )
            await watch.wait(params.interval)
            # Gates woken by the same change would otherwise claim and back off in step.
            await asyncio.sleep(params.interval * random.random())


def _expiry() -> str:
    return f"{time.time() + CLAIM_TTL:.3f}"


@task("milkyway.restart-member")
async def restart_member(params: MemberParams, ctx: TaskContext) -> dict[str, Any]:
    """Restart one member onto its desired template and wait until it is Ready again.

    Idempotent: a member already Ready on the desired hash and version is left alone, so a
    retried or resumed step never restarts a member twice. StatefulSets (``OnDelete``) and
    Deployments recreate a deleted pod from their current template; a per-member
    Deployment is re-applied (its ``Recreate`` strategy replaces the pod); a bare Pod is
    deleted and created again from its manifest."""
    params = await params.with_manifests(ctx)
    clock = Clock(params.timeout)
    pods = _live(await _member_pods(ctx, params, clock))
    if any(
        pod_ready(p)
        and pod_current(p, params.config_hash, params.version)
        and (p["metadata"].get("creationTimestamp") or "") >= params.restart_before
        for p in pods
    ):
        for pod in pods:
            if DISRUPTING_ANNOTATION in (pod["metadata"].get("annotations") or {}):
                await annotate(
                    ctx,
                    params.cluster,
                    pod["metadata"]["name"],
                    params.namespace,
                    {DISRUPTING_ANNOTATION: None},
                )
        return {"restarted": False}
    old = frozenset(p["metadata"].get("uid", "") for p in pods)
    if params.workload == "deploymentset":
        workloads = [m for m in params.manifests if m.get("kind") == "Deployment"]
        await apply(ctx, params.cluster, workloads, params.namespace)
        deployment = (
            await exists(
                ctx, params.cluster, Deployment, workloads[0]["metadata"]["name"], params.namespace
            )
            if workloads
            else None
        )
        if deployment is not None and all(
            pod_current(p, params.config_hash, params.version) for p in pods
        ):
            for pod in pods:
                await delete(ctx, params.cluster, Pod, pod["metadata"]["name"], params.namespace)
    else:
        for pod in pods:
            await delete(ctx, params.cluster, Pod, pod["metadata"]["name"], params.namespace)
        if params.workload == "pods":
            await _recreate_pod(ctx, params, clock)
    ready = await _wait_member(ctx, params, clock, old)
    return {"restarted": True, "pod": ready["metadata"]["name"]}


async def _drop_claimless_pods(
    ctx: TaskContext, m: MemberParams, clock: Clock, old: frozenset[str]
) -> None:
    """A pod the StatefulSet recreated while the old claim was still going would wait for
    that claim forever; deleting it lets the controller create pod and claim afresh."""
    for pod in _live(await _member_pods(ctx, m, clock)):
        if pod["metadata"].get("uid") not in old and not pod_ready(pod):
            await delete(ctx, m.cluster, Pod, pod["metadata"]["name"], m.namespace, 0)


async def _recreate_pod(ctx: TaskContext, m: MemberParams, clock: Clock) -> None:
    """A bare Pod has no controller: wait for the old one to go, then create it again."""
    manifests = [x for x in m.manifests if x.get("kind") == "Pod"]
    if not manifests:
        raise FatalError(f"member {m.name}: a pods-pattern restart needs its Pod manifest")
    while await exists(ctx, m.cluster, Pod, m.name, m.namespace) is not None:
        still_waiting(
            ctx,
            clock,
            f"{m.name}: waiting for the old pod to go",
            f"pod {m.name} still terminating",
        )
        await asyncio.sleep(m.interval)
    await apply(
        ctx,
        m.cluster,
        [*(x for x in m.manifests if x.get("kind") != "Pod"), *manifests],
        m.namespace,
    )


@task("milkyway.member-health")
async def member_health(params: MemberParams, ctx: TaskContext) -> dict[str, Any]:
    """The member is Ready (its readiness probe passes) and runs the desired hash and
    version. A ComponentType replaces the ``member-health`` step to check more (Kafka:
    no under-replicated partitions)."""
    pod = await _wait_member(ctx, params, Clock(params.timeout))
    return {"pod": pod["metadata"]["name"]}


class ReplaceParams(MemberParams):
    """A member to replace, and why (so the task can check the reason still holds)."""

    action: str = "replace-volume"
    """``replace-volume``: a new, empty volume; ``reschedule``: delete only the pod (on
    ``lostNode``), its controller starts it elsewhere with the same network-attached
    claim."""
    lost_node: str = Field(default="", alias="lostNode")
    """The lost node that decided the replacement: nothing is touched if it is Ready
    again by the time the task runs."""
    disk_alert: bool = Field(default=False, alias="diskAlert")
    """Decided by the member agent's critical-disk report: nothing is touched if the
    pod's DiskAlert condition no longer says critical or failed when the task runs."""


async def _node_returned(ctx: TaskContext, m: ReplaceParams) -> bool:
    if not m.lost_node:
        return False
    node = await exists(ctx, m.cluster, Node, m.lost_node, None)
    conditions = ((node or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def _already_replaced(ctx: TaskContext, m: ReplaceParams) -> bool:
    """A requested replacement done by an earlier attempt: the claim is younger than
    the request (so a step run twice never deletes the new volume)."""
    if not (m.restart_before and m.claim):
        return False
    claim = await exists(ctx, m.cluster, PersistentVolumeClaim, m.claim, m.namespace)
    created = ((claim or {}).get("metadata") or {}).get("creationTimestamp") or ""
    return bool(created) and created >= m.restart_before


def _disk_critical(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == DISK_ALERT_CONDITION
        and c.get("status") == "True"
        and c.get("reason") in ("Critical", "Failed")
        for c in (pod.get("status") or {}).get("conditions") or []
    )


@task("milkyway.replace-member")
async def replace_member(params: ReplaceParams, ctx: TaskContext) -> dict[str, Any]:
    """Replace a member with a fresh pod on a new, empty volume, or (``reschedule``)
    move its pod off a lost node keeping its network-attached volume.

    Checked again right before anything is deleted: a lost node that is Ready again, or
    a disk its agent no longer reports critical, means the member keeps everything (the
    planner decided minutes ago; the world may have changed since). For a new volume: the
    claim is deleted first (it goes once its pod is gone), the pod is deleted at once
    (grace 0: its node cannot stop it), a local volume is deleted, then the controller
    (StatefulSet) or the member's manifests (other patterns) create the member again; the
    new claim is marked as holding no data until its member is Ready on it, and the task
    waits until it is."""
    if await _node_returned(ctx, params):
        return {"replaced": False, "reason": f"node {params.lost_node} is Ready again"}
    params = await params.with_manifests(ctx)
    clock = Clock(params.timeout)
    pods = await _member_pods(ctx, params, clock)
    if params.disk_alert and not any(_disk_critical(p) for p in pods):
        return {"replaced": False, "reason": "its disk is no longer critical"}
    old = frozenset(p["metadata"].get("uid", "") for p in pods)
    if params.action == "reschedule":
        for pod in pods:
            if not params.lost_node or (pod.get("spec") or {}).get("nodeName") == params.lost_node:
                await delete(ctx, params.cluster, Pod, pod["metadata"]["name"], params.namespace, 0)
        ready = await _wait_member(ctx, params, clock, old)
        return {"pod": ready["metadata"]["name"], "rescheduled": True}
    if await _already_replaced(ctx, params):
        ready = await _wait_member(ctx, params, clock)
        return {"pod": ready["metadata"]["name"], "replaced": False, "reason": "already done"}
    claim = (
        await exists(ctx, params.cluster, PersistentVolumeClaim, params.claim, params.namespace)
        if params.claim
        else None
    )
    old_claim = (claim or {}).get("metadata", {}).get("uid")
    bound = ((claim or {}).get("spec") or {}).get("volumeName")
    if params.claim:
        await delete(ctx, params.cluster, PersistentVolumeClaim, params.claim, params.namespace)
    for pod in pods:
        await delete(ctx, params.cluster, Pod, pod["metadata"]["name"], params.namespace, 0)
    while params.claim:
        found = await exists(
            ctx, params.cluster, PersistentVolumeClaim, params.claim, params.namespace
        )
        if found is None or found["metadata"].get("uid") != old_claim:
            if found is None and params.workload == "statefulset":
                await _drop_claimless_pods(ctx, params, clock, old)
            break
        still_waiting(
            ctx,
            clock,
            f"waiting for claim {params.claim} to go",
            f"claim {params.claim} still present",
        )
        await asyncio.sleep(params.interval)
    for volume in {v for v in (bound, params.volume) if v}:
        found = await exists(ctx, params.cluster, PersistentVolume, volume, None)
        if (
            found is not None
            and (found.get("spec") or {}).get("persistentVolumeReclaimPolicy") != "Delete"
        ):
            await delete(ctx, params.cluster, PersistentVolume, volume, None)
    manifests = [_marked_fresh(m) for m in params.manifests]
    if params.workload == "deploymentset":
        await apply(ctx, params.cluster, manifests, params.namespace)
    elif params.workload == "pods":
        await _recreate_pod(ctx, params.model_copy(update={"manifests": manifests}), clock)
    elif params.claim:
        await _mark_new_claim(ctx, params, old_claim, clock)
    ready = await _wait_member(ctx, params, clock, old)
    if params.claim:
        await annotate(
            ctx,
            params.cluster,
            params.claim,
            params.namespace,
            {FRESH_VOLUME: None},
            PersistentVolumeClaim,
        )
    return {"pod": ready["metadata"]["name"], "replacedVolume": bound or params.volume or ""}


def _marked_fresh(manifest: dict[str, Any]) -> dict[str, Any]:
    """A claim manifest marked as created empty (the planner then does not count its
    member as holding data until it has been Ready on it)."""
    if manifest.get("kind") != "PersistentVolumeClaim":
        return manifest
    metadata = dict(manifest.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), FRESH_VOLUME: "true"}
    return {**manifest, "metadata": metadata}


async def _mark_new_claim(
    ctx: TaskContext, m: ReplaceParams, old_claim: str | None, clock: Clock
) -> None:
    """Wait for the StatefulSet to create the member's new claim, then mark it fresh."""
    while True:
        found = await exists(ctx, m.cluster, PersistentVolumeClaim, m.claim, m.namespace)
        if found is not None and found["metadata"].get("uid") != old_claim:
            await annotate(
                ctx, m.cluster, m.claim, m.namespace, {FRESH_VOLUME: "true"}, PersistentVolumeClaim
            )
            return
        ctx.heartbeat(f"waiting for the new claim {m.claim}")
        clock.tick()
        if clock.expired:
            raise RetryableError(f"no new claim {m.claim} yet")
        await asyncio.sleep(m.interval)


__all__ = ["disruption_gate", "member_health", "replace_member", "restart_member"]

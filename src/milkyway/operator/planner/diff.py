"""One zone's WIRI against its WISB: provisioned or not, growing, shrinking, members down,
stale, broken, or only a hot-reloadable config change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from milkyway.kube.labels import CONFIG_HASH, MEMBER
from milkyway.operator.observe import VERSION_LABEL, MemberObservation, ZoneObservation
from milkyway.operator.planner.contract import WORKLOAD_KINDS
from milkyway.operator.planner.desired import MemberWant, ZoneWant, _key


@dataclass
class ZoneDiff:
    """How one zone's WIRI differs from its WISB."""

    want: ZoneWant
    obs: ZoneObservation | None
    provisioned: bool = False
    """The zone's workload exists (or, per-member, some member's objects do)."""
    missing_objects: list[str] = field(default_factory=list)
    grow: bool = False
    removed: list[dict[str, Any]] = field(default_factory=list)
    """Members to remove (scale-in): ``{pod, claim, volume, workload}``."""
    down: list[MemberObservation | MemberWant] = field(default_factory=list)
    """Wanted members that are not Ready or are missing (members a provision or scale-out
    has yet to create are not down: they never ran)."""
    stale: list[MemberObservation] = field(default_factory=list)
    """Ready-or-not existing members running another restart hash or version."""
    upgrade: bool = False
    reload: bool = False
    """The ConfigMap or workload template differs while every member's restart hash and
    version match: a hot reload."""
    broken: list[MemberObservation] = field(default_factory=list)
    """Members on a lost node (or whose local volume is pinned to one) or on a failed
    disk, whether their pod still exists, is terminating or is gone."""
    seen: list[MemberObservation] = field(default_factory=list)
    """The observation of each wanted member that has one (per-member patterns and
    StatefulSets)."""
    ready: int = 0
    updated: int = 0


def _member_obs(
    obs: ZoneObservation | None, want: MemberWant, workload: str
) -> MemberObservation | None:
    if obs is None:
        return None
    for member in obs.members:
        if workload == "statefulset" and member.ordinal == want.ordinal:
            return member
        if workload != "statefulset" and member.member_id == want.member_id:
            return member
    return None


def _template_hash(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    kind = obj.get("kind")
    metadata = obj.get("metadata") or {}
    if kind in ("StatefulSet", "Deployment"):
        metadata = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return (
        (metadata.get("annotations") or {}).get(CONFIG_HASH),
        (metadata.get("labels") or {}).get(VERSION_LABEL),
    )


def diff_zone(want: ZoneWant, obs: ZoneObservation | None) -> ZoneDiff:
    result = ZoneDiff(want, obs)
    live = dict(obs.objects) if obs is not None else {}
    workload_keys = [k for k in want.keys if k[0].rsplit("/", 1)[-1] in WORKLOAD_KINDS]
    live_member_ids = {
        int(labels[MEMBER])
        for obj in live.values()
        if (labels := (obj.get("metadata") or {}).get("labels") or {}).get(MEMBER, "").isdigit()
        and obj.get("kind") in (*WORKLOAD_KINDS, "PersistentVolumeClaim")
    }
    if want.workload in ("statefulset", "deployment"):
        result.provisioned = any(k in live for k in workload_keys)
    else:
        result.provisioned = bool(live_member_ids) or (want.size == 0 and _has_shared(want, live))
    for key in sorted(want.keys):
        kind = key[0].rsplit("/", 1)[-1]
        member_kind = kind == "Deployment" and want.workload == "deploymentset"
        if (
            key not in live
            and kind not in ("Pod", "PersistentVolumeClaim", "PersistentVolume")
            and not member_kind
        ):
            result.missing_objects.append(f"{kind}/{key[2]}")
    _diff_size(result, live, live_member_ids)
    _diff_members(result, live)
    return result


def _has_shared(want: ZoneWant, live: Mapping[tuple[str, str, str], Any]) -> bool:
    return any(_key(obj) in live for obj in want.manifests)


def _diff_size(result: ZoneDiff, live: Mapping[tuple[str, str, str], Any], ids: set[int]) -> None:
    want = result.want
    if not result.provisioned:
        return
    if want.workload in ("statefulset", "deployment"):
        workload = next(
            (
                live[k]
                for k in want.keys
                if k in live and k[0].endswith(("/StatefulSet", "/Deployment"))
            ),
            None,
        )
        replicas = int(((workload or {}).get("spec") or {}).get("replicas") or 0)
        if replicas < want.size:
            result.grow = True
        if want.workload == "statefulset":
            base = next(iter(m.name.rsplit("-", 1)[0] for m in want.members), None)
            sts_name = (workload or {}).get("metadata", {}).get("name") or base
            leftover = sorted(
                {
                    int(obj["metadata"]["name"].rsplit("-", 1)[1])
                    for obj in live.values()
                    if obj.get("kind") in ("Pod", "PersistentVolumeClaim")
                    and sts_name
                    and obj["metadata"]["name"].rsplit("-", 1)[0] in (sts_name, f"data-{sts_name}")
                    and obj["metadata"]["name"].rsplit("-", 1)[1].isdigit()
                    and int(obj["metadata"]["name"].rsplit("-", 1)[1]) >= want.size
                }
                | set(range(want.size, max(replicas, want.size)))
            )
            for ordinal in reversed(leftover):
                result.removed.append(
                    {
                        "pod": f"{sts_name}-{ordinal}",
                        "claim": f"data-{sts_name}-{ordinal}",
                        "volume": "",
                        "workload": "",
                        "memberId": -1,
                    }
                )
        elif replicas > want.size:
            result.removed.append(
                {"pod": "", "claim": "", "volume": "", "workload": "", "memberId": -1}
            )
        return
    wanted = {m.member_id for m in want.members}
    if wanted - ids:
        result.grow = True
    prefix = f"{want.members[0].name.rsplit('-m', 1)[0]}-m" if want.members else None
    for member_id in sorted(ids - wanted, reverse=True):
        base = prefix or _base_from_live(live, member_id)
        name = f"{base}{member_id}"
        result.removed.append(
            {
                "pod": name if want.workload == "pods" else "",
                "claim": f"{name}-data",
                "volume": f"{want.namespace}-{name}" if want.workload == "pods" else "",
                "workload": name if want.workload == "deploymentset" else "",
                "memberId": member_id,
            }
        )


def _base_from_live(live: Mapping[tuple[str, str, str], Any], member_id: int) -> str:
    for obj in live.values():
        labels = (obj.get("metadata") or {}).get("labels") or {}
        name = str(obj["metadata"]["name"])
        if labels.get(MEMBER) == str(member_id) and f"-m{member_id}" in name:
            return name.split(f"-m{member_id}")[0] + "-m"
    return ""


def _diff_members(result: ZoneDiff, live: Mapping[tuple[str, str, str], Any]) -> None:
    want = result.want
    obs = result.obs
    if not result.provisioned:
        return
    if want.workload == "deployment":
        members = [m for m in (obs.members if obs else ()) if m.exists and not m.deleting]
        result.ready = sum(1 for m in members if m.ready)
        result.updated = sum(1 for m in members if m.ready and _current(m, want))
        result.stale = [m for m in members if not _current(m, want)]
        result.down = [m for m in members if not m.ready]
        missing = max(0, want.size - result.ready - len(result.down))
        result.down.extend(
            MemberWant(f"{want.zone}-missing-{i}", None, None, None, None, ())
            for i in range(missing)
        )
    else:
        growing = _growing(want, live)
        for member in want.members:
            seen = _member_obs(obs, member, want.workload)
            if seen is not None:
                result.seen.append(seen)
            if member.name in growing and (seen is None or not seen.exists):
                continue
            if seen is not None and (
                not (seen.volume_ok and seen.node_ok) or (seen.exists and seen.disk_alert)
            ):
                result.broken.append(seen)
            if seen is None or not seen.exists or seen.deleting:
                result.down.append(seen if seen is not None else member)
                continue
            if seen.ready:
                result.ready += 1
                if _current(seen, want):
                    result.updated += 1
            else:
                result.down.append(seen)
            if not _current(seen, want):
                result.stale.append(seen)
    result.upgrade = any(m.version != want.version for m in result.stale)
    if not result.stale:
        result.reload = _needs_reload(want, live)


def _growing(want: ZoneWant, live: Mapping[tuple[str, str, str], Any]) -> set[str]:
    """Wanted members a scale-out has yet to create (not down: they never existed)."""
    if want.workload == "statefulset":
        sts = next(
            (live[k] for k in want.keys if k in live and k[0].endswith("/StatefulSet")), None
        )
        replicas = int(((sts or {}).get("spec") or {}).get("replicas") or 0)
        return {m.name for m in want.members if (m.ordinal or 0) >= replicas}
    ids = {
        (obj.get("metadata") or {}).get("labels", {}).get(MEMBER)
        for obj in live.values()
        if obj.get("kind") in (*WORKLOAD_KINDS, "PersistentVolumeClaim")
    }
    return {m.name for m in want.members if str(m.member_id) not in ids}


def _current(member: MemberObservation, want: ZoneWant) -> bool:
    return member.config_hash == want.pod_hash and member.version == want.version


def _needs_reload(want: ZoneWant, live: Mapping[tuple[str, str, str], Any]) -> bool:
    for obj in want.manifests:
        found = live.get(_key(obj))
        if found is None:
            continue
        if obj.get("kind") == "ConfigMap":
            live_hash = ((found.get("metadata") or {}).get("annotations") or {}).get(CONFIG_HASH)
            if live_hash != want.config_map_hash:
                return True
        if obj.get("kind") in ("StatefulSet", "Deployment") and _template_hash(found) != (
            want.pod_hash,
            want.version,
        ):
            return True
        if obj.get("kind") in ("StatefulSet", "Deployment"):
            replicas = (found.get("spec") or {}).get("replicas")
            if replicas is not None and replicas != want.size:
                return True
    return False

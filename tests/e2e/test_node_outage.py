"""Node outages never cost a member its data.

A node that is lost for less than the grace period comes back to find every member's
claim and volume where it left them, on every deployment pattern, for one node or two at
once. A node lost for longer moves members with local volumes onto new ones, one policy
batch at a time, with the members holding data a majority at every transition; members
on network-attached volumes keep them and only move their pod.

The simulator runs at its fast timings (a silent node is NotReady after 1 s and its pods
are evicted 1 s later), so the outages below are long past Kubernetes' own reactions: a
rule that acted on NotReady alone would have wiped the volumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from lightkube.resources.core_v1 import PersistentVolume, PersistentVolumeClaim

from milkyway.flows.engine import add_request
from milkyway.flows.kube_store import KubeStore

from .conftest import APP_LABEL, COMPONENT_LABEL, World

pytestmark = pytest.mark.slow

NS = "outage"
CLUSTER = "na-phx"


def application(
    name: str,
    workload: str,
    *,
    storage_class: str | None = "local",
    grace: int = 120,
    component: str = "zookeeper",
    version: str = "3.8.4",
    size: int = 3,
    nodes: list[str] | None = None,
) -> str:
    storage = ""
    if storage_class is not None:
        storage = f"      storage: {{storageClass: {storage_class}}}\n"
    pinned = f"              nodes: [{', '.join(nodes)}]\n" if nodes else ""
    return f"""apiVersion: milkyway.ebay.com/v1
kind: Application
metadata:
  name: {name}
  namespace: {NS}
spec:
  replacement: {{gracePeriodSeconds: {grace}}}
  components:
    - name: {component}
      version: "{version}"
      workload: {workload}
{storage}      regions:
        - name: NA
          zones:
            - name: phx
              size: {size}
{pinned}"""


async def volumes(world: World, app: str) -> dict[str, str]:
    """Every claim of ``app`` and every volume bound to one, by name, with its UID."""
    client = world.member(CLUSTER)
    found: dict[str, str] = {}
    bound: set[str] = set()
    async for claim in client.list(PersistentVolumeClaim, namespace=NS, labels={APP_LABEL: app}):
        found[f"pvc/{claim.metadata.name}"] = claim.metadata.uid or ""
        if claim.spec and claim.spec.volumeName:
            bound.add(claim.spec.volumeName)
    async for volume in client.list(PersistentVolume):
        if volume.metadata.name in bound:
            found[f"pv/{volume.metadata.name}"] = volume.metadata.uid or ""
    return found


async def member_nodes(world: World, app: str, component: str) -> list[str]:
    pods = await world.pods(CLUSTER, NS, {APP_LABEL: app, COMPONENT_LABEL: component})
    return sorted({p["spec"]["nodeName"] for p in pods if (p.get("spec") or {}).get("nodeName")})


async def outage(world: World, nodes: list[str], seconds: float) -> None:
    """Lose ``nodes`` at once for ``seconds``, then bring them back."""
    faults = [await world.control.faults.lose_node(CLUSTER, node) for node in nodes]
    await asyncio.sleep(seconds)
    for fault in faults:
        await world.control.faults.lift(fault.id)


async def replace_runs(world: World, app: str) -> list[str]:
    return [
        r["metadata"]["name"]
        for r in await world.runs(NS, app)
        if (r.get("spec") or {}).get("flow", "").startswith("milkyway-replace-member")
    ]


async def evicted(world: World, app: str, component: str, nodes: list[str]) -> bool:
    """No member on ``nodes`` is Ready any more (the outage has been noticed)."""
    pods = await world.pods(CLUSTER, NS, {APP_LABEL: app, COMPONENT_LABEL: component})
    on_nodes = [p for p in pods if (p.get("spec") or {}).get("nodeName") in nodes]
    return not any(_ready(p) for p in on_nodes)


PATTERNS: dict[str, dict[str, Any]] = {
    "statefulset-local": {"workload": "statefulset"},
    "statefulset-network": {"workload": "statefulset", "storage_class": None},
    "deploymentset-local": {"workload": "deploymentset"},
    "pods-local": {
        "workload": "pods",
        "storage_class": None,
        "nodes": [f"{CLUSTER}-node-{i}" for i in range(3)],
    },
    "deployment": {
        "workload": "deployment",
        "storage_class": None,
        "component": "flink-jobmanager",
        "version": "1.18.1",
        "size": 1,
    },
}


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
async def test_outage_shorter_than_the_grace_period_keeps_every_volume(
    world: World, pattern: str
) -> None:
    """One node, then two nodes at once, lost for longer than Kubernetes takes to evict
    their pods but shorter than the grace period: nothing is deleted, the Application
    says what it would do and when, and it is Ready again once the nodes return."""
    options = PATTERNS[pattern]
    component = options.get("component", "zookeeper")
    app = f"short-{pattern.split('-')[0]}"
    await world.apply(application(app, grace=120, **options))
    await world.wait_ready(NS, app, within=120)
    before = await volumes(world, app)
    if options.get("storage_class", "local") or options["workload"] == "pods":
        assert before, f"{pattern}: the members have no volumes"
    for count in (1, 2):
        lost = (await member_nodes(world, app, component))[:count]
        faults = [await world.control.faults.lose_node(CLUSTER, node) for node in lost]
        await world.wait_for(
            lambda lost=lost: evicted(world, app, component, lost),
            f"members on {lost} to be NotReady",
            within=30,
        )
        if component == "zookeeper":
            announced = await world.wait_for(
                lambda: _member_lost(world, app),
                "the MemberLost condition",
                within=30,
            )
            assert "unless it recovers" in announced or "cannot move" in announced
        await asyncio.sleep(4)
        for fault in faults:
            await world.control.faults.lift(fault.id)
        await world.wait_ready(NS, app, within=120)
        assert await volumes(world, app) == before, f"{pattern}: a volume was replaced"
        assert not await replace_runs(world, app)
    obj = await world.app(NS, app)
    assert not (obj.get("status") or {}).get("lostMembers")


async def _member_lost(world: World, app: str) -> str:
    obj = await world.app(NS, app)
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "MemberLost" and condition.get("status") == "True":
            return str(condition.get("message") or "")
    return ""


@dataclass
class DataHolders:
    """Members whose data exists, at every change of a claim or pod in the cluster: a
    member holds data while its original claim exists, or once a pod of it has been
    Ready on its new claim (it caught up from the others)."""

    members: list[str]
    """Claim names of the members."""
    original: dict[str, str] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)
    synced: set[str] = field(default_factory=set)
    lowest: int | None = None
    history: list[tuple[str, int]] = field(default_factory=list)

    def holders(self) -> int:
        return sum(
            1
            for claim in self.members
            if (uid := self.current.get(claim))
            and (uid == self.original.get(claim) or uid in self.synced)
        )

    def _note(self, what: str) -> None:
        count = self.holders()
        self.history.append((what, count))
        self.lowest = count if self.lowest is None else min(self.lowest, count)

    def on_claim(self, event: Any) -> None:
        claim = event.object
        name = claim["metadata"]["name"]
        if name not in self.members:
            return
        if event.type == "DELETED":
            self.current.pop(name, None)
        else:
            self.current[name] = claim["metadata"]["uid"]
        self._note(f"claim {name} {event.type}")

    def on_pod(self, event: Any) -> None:
        pod = event.object
        if event.type == "DELETED" or not _ready(pod):
            return
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim in self.current and self.current[claim] not in self.synced:
                self.synced.add(self.current[claim])
                self._note(f"pod {pod['metadata']['name']} Ready on {claim}")


def watch_data(world: World, claims: dict[str, str]) -> DataHolders:
    tracker = DataHolders(sorted(claims), original=dict(claims), current=dict(claims))
    api = world.sim[CLUSTER].api
    for resource, callback in (
        ("v1/persistentvolumeclaims", tracker.on_claim),
        ("v1/pods", tracker.on_pod),
    ):
        unsubscribe: Callable[[], None] = api.subscribe(resource, callback, namespace=NS)
        world._unsubscribes.append(unsubscribe)
    return tracker


@pytest.mark.parametrize("workload", ["statefulset", "deploymentset"])
async def test_outage_longer_than_the_grace_period_replaces_local_volumes_safely(
    world: World, workload: str
) -> None:
    """Two of three members' nodes lost for good: after the grace period each moves onto
    a new volume, one at a time, never leaving fewer than two members holding data; the
    Application is Ready again, with every other volume untouched."""
    app = f"long-{workload}"
    await world.apply(application(app, workload, grace=3))
    await world.wait_ready(NS, app, within=120)
    before = await volumes(world, app)
    claims = {k.split("/", 1)[1]: v for k, v in before.items() if k.startswith("pvc/")}
    assert len(claims) == 3
    holders = watch_data(world, claims)
    nodes = await member_nodes(world, app, "zookeeper")
    lost = nodes[:2]
    pods = await world.pods(CLUSTER, NS, {APP_LABEL: app})
    moved = {_claim_of(p) for p in pods if (p.get("spec") or {}).get("nodeName") in lost} - {None}
    for node in lost:
        await world.control.faults.lose_node(CLUSTER, node)

    async def replaced() -> bool:
        now = await volumes(world, app)
        return (
            all(now.get(f"pvc/{claim}") not in (None, claims[claim]) for claim in moved)
            and len([k for k in now if k.startswith("pvc/")]) == 3
        )

    try:
        await world.wait_for(replaced, "the lost members' volumes to be replaced", within=120)
    except AssertionError as exc:
        status = (await world.app(NS, app)).get("status") or {}
        runs = [
            (r["metadata"]["name"], (r.get("status") or {}).get("phase"))
            for r in await world.runs(NS, app)
        ]
        raise AssertionError(f"{exc}; status {status}; runs {runs}") from None
    await world.wait_ready(NS, app, within=180)
    after = await volumes(world, app)
    for claim, uid in claims.items():
        if claim not in moved:
            assert after[f"pvc/{claim}"] == uid, f"{claim} was replaced but its node lived"
    assert holders.lowest is not None and holders.lowest >= 2, holders.history
    runs = await replace_runs(world, app)
    assert len(runs) >= len(moved), runs
    events = await _events(world, app)
    assert any(e.reason == "MemberLost" for e in events), [e.reason for e in events]


async def test_member_on_network_storage_keeps_its_volume_after_the_grace_period(
    world: World,
) -> None:
    """A member on a network-attached volume whose node stays lost is rescheduled onto
    another node with the same claim and volume."""
    app = "long-network"
    await world.apply(application(app, "statefulset", storage_class=None, grace=3))
    await world.wait_ready(NS, app, within=120)
    before = await volumes(world, app)
    nodes = await member_nodes(world, app, "zookeeper")
    await world.control.faults.lose_node(CLUSTER, nodes[0])

    async def moved() -> bool:
        pods = await world.pods(CLUSTER, NS, {APP_LABEL: app})
        return len(pods) == 3 and all(
            _ready(p) and p["spec"].get("nodeName") != nodes[0] for p in pods
        )

    await world.wait_for(moved, "the member to run on another node", within=120)
    await world.wait_ready(NS, app, within=120)
    assert await volumes(world, app) == before


async def _events(world: World, app: str) -> list[Any]:
    from lightkube.resources.core_v1 import Event

    return [
        e
        async for e in world.client.list(Event, namespace=NS)
        if e.involvedObject and e.involvedObject.name == app
    ]


def _claim_of(pod: dict[str, Any]) -> str | None:
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            return str(claim)
    return None


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


async def test_replacement_waits_for_its_approval(world: World) -> None:
    """With ``requireApproval``, the volume stays until an approver decides."""
    app = "approved"
    text = application(app, "statefulset", grace=2).replace(
        "  replacement: {gracePeriodSeconds: 2}\n",
        "  replacement: {gracePeriodSeconds: 2, requireApproval: true, "
        "approvers: {users: [dana]}}\n",
    )
    await world.apply(text)
    await world.wait_ready(NS, app, within=120)
    before = await volumes(world, app)
    pods = await world.pods(CLUSTER, NS, {APP_LABEL: app})
    victim = next(p for p in pods if p["metadata"]["name"].endswith("-0"))
    claim = _claim_of(victim)
    await world.control.faults.lose_node(CLUSTER, victim["spec"]["nodeName"])

    async def waiting() -> str | None:
        for run in await world.runs(NS, app):
            node = ((run.get("status") or {}).get("nodes") or {}).get("approve") or {}
            if node.get("phase") == "Waiting":
                return str(run["metadata"]["name"])
        return None

    run = await world.wait_for(waiting, "the replacement to wait for approval", within=60)
    await asyncio.sleep(3)
    assert (await volumes(world, app))[f"pvc/{claim}"] == before[f"pvc/{claim}"]
    store = KubeStore(world.client, NS)
    await add_request(store, run, "approve", "mallory", step="approve", reason="me neither")
    await asyncio.sleep(2)
    assert await waiting() == run, "someone who is not an approver passed the approval"
    await add_request(store, run, "approve", "dana", step="approve", reason="the node is gone")

    async def replaced() -> bool:
        now = await volumes(world, app)
        return now.get(f"pvc/{claim}") not in (None, before[f"pvc/{claim}"])

    await world.wait_for(replaced, "the approved replacement", within=90)
    await world.wait_ready(NS, app, within=120)

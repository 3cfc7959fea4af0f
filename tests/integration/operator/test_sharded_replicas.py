"""Sharded operator replicas on simulated clusters: a replica dies mid-flow and its flows
finish on the others; a replica joins and shards move to it mid-flow; never does one step
of one run execute on two replicas at once.

Every replica gets a task registry of its own whose ``sharding.probe`` task records which
replica ran which step of which run, and how many executions of that step were under way
at once across all replicas (they share this process).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.coordination_v1 import Lease
from pydantic import BaseModel

from milkyway.flows.tasks import REGISTRY, TaskContext, TaskRegistry
from milkyway.kube.resources import FLOWRUN
from milkyway.model.flow import TERMINAL_RUN_PHASES
from milkyway.operator.manager import Operator
from milkyway.operator.planner import FlowRequest, Plan
from milkyway.operator.sharding import shard_of

from .conftest import operator_deployment, settings

pytestmark = pytest.mark.slow

SHARDS = 6
NAMESPACE = "sharded"
PROBE_FLOW = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: sharding-probe}
spec:
  parameters:
    seconds: {type: number, default: 1.0}
  steps:
    - {name: one, action: sharding.probe, params: {seconds: "${{ params.seconds }}"}}
    - {name: two, action: sharding.probe, params: {seconds: "${{ params.seconds }}"}}
    - {name: three, action: sharding.probe, params: {seconds: "${{ params.seconds }}"}}
    - {name: four, action: sharding.probe, params: {seconds: "${{ params.seconds }}"}}
"""


class ProbeParams(BaseModel):
    seconds: float = 1.0


@dataclass
class Ledger:
    """Executions of probe steps, across every replica of the test."""

    active: Counter[tuple[str, str]] = field(default_factory=Counter)
    peak: Counter[tuple[str, str]] = field(default_factory=Counter)
    ran: list[tuple[str, str, str, float]] = field(default_factory=list)
    """(replica, run, step, started)"""

    def registry(self, replica: str) -> TaskRegistry:
        registry = REGISTRY.copy()

        @registry.task("sharding.probe")
        async def probe(params: ProbeParams, ctx: TaskContext) -> dict[str, Any]:
            key = (ctx.run_id, ctx.step)
            self.active[key] += 1
            self.peak[key] = max(self.peak[key], self.active[key])
            self.ran.append((replica, ctx.run_id, ctx.step, time.monotonic()))
            try:
                await asyncio.sleep(params.seconds)
            finally:
                self.active[key] -= 1
            return {}

        return registry

    def replicas_of(self, run: str) -> list[str]:
        return [replica for replica, name, _, _ in self.ran if name == run]


def probe_planner(seconds: float) -> Any:
    """A planner starting one probe flow (steps of ``seconds``) per Application."""

    def plan(app: Any, resolved: Any, *args: Any, **kw: Any) -> Plan:
        return _plan(resolved, *args, seconds=seconds, **kw)

    return plan


def _plan(
    resolved: Any,
    desired: Any,
    observed: Any,
    running: Sequence[Any],
    *,
    seconds: float,
    now: Any,
    clusters: Mapping[str, Any],
    deleting: bool = False,
) -> Plan:
    """Start one probe flow per Application; Running once it succeeded."""
    done = any(r.phase == "Succeeded" for r in running)
    busy = any(r.phase not in TERMINAL_RUN_PHASES for r in running)
    start: tuple[FlowRequest, ...] = ()
    if not (done or busy or deleting):
        start = (
            FlowRequest(
                flow="sharding-probe",
                params={"seconds": seconds},
                component="etcd",
                reason="probe",
                mutex=f"test/{resolved.namespace}/{resolved.name}",
            ),
        )
    status = {
        "phase": "Running" if done else "Provisioning",
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if done else "False",
                "reason": "Probed" if done else "Probing",
                "message": "",
            }
        ],
    }
    return Plan(start, (), status, None if done else 0.5, deleted=deleting)


def application(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "components": [
                {
                    "name": "etcd",
                    "version": "3.5.21",
                    "regions": [{"name": "NA", "zones": [{"name": "phx", "size": 1}]}],
                }
            ]
        },
    }


def one_per_shard(prefix: str) -> list[str]:
    """Application names, one in each shard."""
    names: dict[int, str] = {}
    i = 0
    while len(names) < SHARDS:
        name = f"{prefix}-{i}"
        names.setdefault(shard_of(NAMESPACE, name, SHARDS), name)
        i += 1
    return [names[s] for s in range(SHARDS)]


def replica(
    world: Any, ledger: Ledger, identity: str, tmp_path: Path, seconds: float = 1.0, **kw: Any
) -> Operator:
    flows = tmp_path / "probe-flow.yaml"
    flows.write_text(PROBE_FLOW)
    kw.setdefault("shards", 0 if kw.get("shards_deployment") else SHARDS)
    return Operator(
        world.sim.kubeconfig_path,
        "mgmt",
        settings(identity, **kw),
        planner=probe_planner(seconds),
        tasks=ledger.registry(identity),
        flow_paths=[flows],
    )


async def balanced(operators: Sequence[Operator], each: int) -> bool:
    held = [op.shards for op in operators]
    union: set[int] = set()
    for shards in held:
        assert not union & shards, f"a shard held twice: {held}"
        union |= shards
    return union == set(range(SHARDS)) and all(len(s) == each for s in held)


async def runs_by_app(world: Any) -> dict[str, dict[str, Any]]:
    found = {}
    async for run in world.mgmt.list(FLOWRUN, namespace=NAMESPACE):
        data = run.to_dict()
        app = (data["metadata"].get("labels") or {}).get("milkyway.ebay.com/application")
        if app:
            found[app] = data
    return found


async def all_running(world: Any, names: Sequence[str]) -> bool:
    for name in names:
        app = await world.application(NAMESPACE, name)
        if (app.get("status") or {}).get("phase") != "Running":
            return False
    return True


async def start_all(operators: Sequence[Operator]) -> None:
    for op in operators:
        await op.start()


async def stop_all(operators: Sequence[Operator]) -> None:
    for op in operators:
        await op.stop()


async def test_a_replica_killed_mid_flow_has_its_flows_finished_by_the_others(
    world: Any, tmp_path: Path
) -> None:
    ledger = Ledger()
    a = replica(world, ledger, "op-a", tmp_path)
    b = replica(world, ledger, "op-b", tmp_path)
    victim = replica(world, ledger, "op-c", tmp_path, release_lease_on_stop=False)
    operators = [a, b, victim]
    await start_all(operators)
    try:
        await world.eventually(
            lambda: balanced(operators, 2), within=30, what="2 shards per replica"
        )
        await world.eventually(
            lambda: a.leading.is_set() or b.leading.is_set() or victim.leading.is_set(),
            within=30,
            what="a leader for the singletons",
        )
        names = one_per_shard("app")
        for name in names:
            await world.apply_application(application(name))
        theirs = [n for n in names if shard_of(NAMESPACE, n, SHARDS) in victim.shards]
        assert len(theirs) == 2

        async def victim_mid_flow() -> list[str]:
            runs = await runs_by_app(world)
            mid = [
                runs[n]["metadata"]["name"]
                for n in theirs
                if n in runs
                and (runs[n].get("status") or {}).get("phase") == "Running"
                and (runs[n].get("status") or {}).get("owner") == "op-c"
            ]
            return mid if len(mid) == len(theirs) else []

        interrupted = await world.eventually(
            victim_mid_flow, within=60, what="the victim driving its flows"
        )
        await victim.stop()  # killed: no Lease released, no run handed over

        try:
            await world.eventually(
                lambda: all_running(world, names), within=120, what="every Application Running"
            )
        except AssertionError:
            print(await world.story(NAMESPACE, theirs[0]))
            raise
        runs = await runs_by_app(world)
        assert {r["status"]["phase"] for r in runs.values()} == {"Succeeded"}
        for run in interrupted:
            who = ledger.replicas_of(run)
            assert who[0] == "op-c" and who[-1] in ("op-a", "op-b"), who
        assert max(ledger.peak.values()) == 1, [k for k, v in ledger.peak.items() if v > 1]
        await world.eventually(
            lambda: balanced([a, b], 3), within=30, what="the survivors hold 3 shards each"
        )
    finally:
        await stop_all(operators)


async def test_a_replica_that_joins_takes_shards_mid_flow_without_a_stall(
    world: Any, tmp_path: Path
) -> None:
    ledger = Ledger()
    # Runs stay leased for 10 minutes: a moved run only resumes in the test's time
    # because the replica giving its shard up hands the run over.
    # Steps of 3 s: the flows are still under way when the new replica takes its shards.
    slow_lease = {"flow_lease_seconds": 600.0, "seconds": 3.0}
    a = replica(world, ledger, "op-a", tmp_path, **slow_lease)
    b = replica(world, ledger, "op-b", tmp_path, **slow_lease)
    await start_all([a, b])
    joined: Operator | None = None
    try:
        await world.eventually(lambda: balanced([a, b], 3), within=30, what="3 shards each")
        names = one_per_shard("app")
        for name in names:
            await world.apply_application(application(name))

        async def all_mid_flow() -> bool:
            runs = await runs_by_app(world)
            return len(runs) == len(names) and all(
                (r.get("status") or {}).get("phase") == "Running" for r in runs.values()
            )

        await world.eventually(all_mid_flow, within=60, what="every flow under way")
        joined = replica(world, ledger, "op-d", tmp_path, **slow_lease)
        await joined.start()
        await world.eventually(
            lambda: balanced([a, b, joined], 2), within=30, what="2 shards each after joining"
        )
        moved = [n for n in names if shard_of(NAMESPACE, n, SHARDS) in joined.shards]
        try:
            await world.eventually(
                lambda: all_running(world, names), within=90, what="every Application Running"
            )
        except AssertionError:
            for op in (a, b, joined):
                print(op.identity, sorted(op.shards))
            for name in names:
                status = (await world.application(NAMESPACE, name)).get("status") or {}
                print(name, shard_of(NAMESPACE, name, SHARDS), status.get("phase"))
                print(await world.story(NAMESPACE, name))
            raise
        runs = await runs_by_app(world)
        assert {r["status"]["phase"] for r in runs.values()} == {"Succeeded"}
        for name in moved:
            who = ledger.replicas_of(runs[name]["metadata"]["name"])
            assert who[0] in ("op-a", "op-b") and "op-d" in who, (name, who)
        assert max(ledger.peak.values()) == 1, [k for k, v in ledger.peak.items() if v > 1]
    finally:
        await stop_all([op for op in (a, b, joined) if op is not None])


async def test_a_stopped_replica_leaves_no_task_and_releases_its_shards(
    world: Any, tmp_path: Path
) -> None:
    before = set(asyncio.all_tasks())
    ledger = Ledger()
    alone = replica(world, ledger, "op-a", tmp_path)
    await alone.start()
    try:
        await world.eventually(lambda: balanced([alone], SHARDS), within=30, what="all shards")
        await world.eventually(alone.leading.is_set, within=30, what="the leader Lease")
    finally:
        await alone.stop()
    left = []
    for task in asyncio.all_tasks() - before:
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        ours = "milkyway" in filename and str(Path("milkyway") / "sim") not in filename
        if ours and not task.done() and task is not asyncio.current_task():
            left.append(f"{task.get_name()} ({code.co_qualname if code else '?'})")
    assert not left, left
    assert alone.shards == frozenset() and not alone.leading.is_set()
    async for lease in world.mgmt.list(Lease, namespace="milkyway-system"):
        assert not lease.spec.holderIdentity, lease.metadata.name


async def test_auto_shards_follow_the_operator_deployment_while_flows_run(
    world: Any, tmp_path: Path
) -> None:
    """``--shards auto``: two replicas split two shards; the Deployment is scaled to three
    and a third replica joins mid-flow: every replica moves to three shards, every flow
    finishes, and no step ran on two replicas at once."""
    await world.mgmt.create(operator_deployment("milkyway-system", 2), namespace="milkyway-system")
    ledger = Ledger()
    auto = {"shards_deployment": "milkyway-operator", "seconds": 2.0}
    a = replica(world, ledger, "op-a", tmp_path, **auto)
    b = replica(world, ledger, "op-b", tmp_path, **auto)
    await start_all([a, b])
    joined: Operator | None = None
    try:
        await world.eventually(lambda: split([a, b], 2), within=30, what="2 shards, one each")
        names = [f"auto-{i}" for i in range(6)]
        for name in names:
            await world.apply_application(application(name))
        patch = {"spec": {"replicas": 3}}
        await world.mgmt.patch(Deployment, "milkyway-operator", patch, namespace="milkyway-system")
        joined = replica(world, ledger, "op-c", tmp_path, **auto)
        await joined.start()
        await world.eventually(
            lambda: split([a, b, joined], 3), within=30, what="3 shards, one each"
        )
        await world.eventually(
            lambda: all_running(world, names), within=120, what="every Application Running"
        )
        runs = await runs_by_app(world)
        assert {r["status"]["phase"] for r in runs.values()} == {"Succeeded"}
        assert max(ledger.peak.values()) == 1, [k for k, v in ledger.peak.items() if v > 1]
        leases = [
            lease.metadata.name
            async for lease in world.mgmt.list(Lease, namespace="milkyway-system")
            if lease.spec.holderIdentity and "-shard-" in lease.metadata.name
        ]
        assert sorted(leases) == [f"milkyway-operator-shard-{i}-of-3" for i in range(3)]
    finally:
        await stop_all([op for op in (a, b, joined) if op is not None])


async def split(operators: Sequence[Operator], count: int) -> bool:
    """Every replica on ``count`` shards, one each, none held twice."""
    held = [op.shards for op in operators]
    counts = {
        op.session.shard_leases.count
        for op in operators
        if op.session is not None and op.session.shard_leases is not None
    }
    union: set[int] = set()
    for shards in held:
        assert not union & shards, f"a shard held twice: {held}"
        union |= shards
    return counts == {count} and union == set(range(count)) and all(len(s) == 1 for s in held)

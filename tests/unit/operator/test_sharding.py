"""The shard split (a stable hash), the fair share of each replica, and the fenced store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from milkyway.cli.main import app
from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import Engine, new_run
from milkyway.flows.store import MemoryStore
from milkyway.flows.tasks import REGISTRY, TaskContext, TaskRegistry
from milkyway.kube.labels import APPLICATION as APPLICATION_LABEL
from milkyway.operator.fencing import Fenced, FencedStore
from milkyway.operator.health.schedule import HEALTH_LABEL
from milkyway.operator.manager import OperatorSettings
from milkyway.operator.shard_count import ShardSetting
from milkyway.operator.sharding import (
    ShardingConfig,
    count_in_name,
    fair_share,
    member_lease_name,
    preference,
    shard_lease_name,
    shard_of,
    shard_of_run,
)

KNOWN = {
    ("milkyway", "stream1"): 0,
    ("default", "kafka-a"): 7,
    ("team-b", "zk"): 1,
}
"""Shards of a few names with 8 shards, as computed once: the split must never change
between versions, or an upgrade would move every Application at once."""


def test_the_split_is_the_same_in_every_process() -> None:
    here = [shard_of(ns, name, 8) for ns, name in KNOWN]
    assert here == list(KNOWN.values())
    code = (
        "from milkyway.operator.sharding import shard_of;"
        f"print([shard_of(ns, n, 8) for ns, n in {list(KNOWN)!r}])"
    )
    # A fresh interpreter has another hash seed: Python's hash() would differ there.
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert other.stdout.strip() == str(here)


def test_the_split_is_even_enough() -> None:
    counts = Counter(shard_of("ns", f"app-{i}", 6) for i in range(6000))
    assert set(counts) == set(range(6))
    assert min(counts.values()) > 850 and max(counts.values()) < 1150, counts


def test_namespace_and_name_both_count() -> None:
    spread = {shard_of(f"ns-{i}", "same-name", 16) for i in range(100)}
    assert len(spread) > 10


def test_a_flowrun_goes_with_its_application() -> None:
    run = new_run(Catalog(load_flows(FLOW)), None, "slow")
    run.metadata.namespace = "team-b"
    run.metadata.labels[APPLICATION_LABEL] = "zk"
    assert shard_of_run(run, 8) == shard_of("team-b", "zk", 8)
    del run.metadata.labels[APPLICATION_LABEL]
    assert shard_of_run(run, 8) == shard_of("team-b", run.metadata.name, 8)


def test_a_health_report_goes_with_the_application_it_checks() -> None:
    """Only the replica reconciling an Application holds its rendering, which the health
    report reads: a report of ``zk`` driven by another replica failed after its retries."""
    run = new_run(Catalog(load_flows(FLOW)), None, "slow", name="zk-health-1796682000")
    run.metadata.namespace = "team-b"
    run.metadata.labels[HEALTH_LABEL] = "zk"
    assert shard_of_run(run, 8) == shard_of("team-b", "zk", 8)
    assert {shard_of_run(run, 64)} == {shard_of("team-b", "zk", 64)}


@pytest.mark.parametrize("shards", [1, 2, 3, 4, 6, 7, 12])
@pytest.mark.parametrize("replicas", [1, 2, 3, 5])
def test_fair_shares_cover_every_shard_once(shards: int, replicas: int) -> None:
    members = [f"replica-{i}" for i in range(replicas)]
    shares = [fair_share(shards, members, m) for m in members]
    assert sum(shares) == shards
    assert max(shares) - min(shares) <= 1


def test_a_replica_counts_itself_even_before_others_see_it() -> None:
    assert fair_share(6, ["a", "b"], "c") == 2
    assert fair_share(6, [], "a") == 6


def test_adding_a_replica_lowers_every_share() -> None:
    before = {m: fair_share(6, ["a", "b"], m) for m in "ab"}
    after = {m: fair_share(6, ["a", "b", "c"], m) for m in "abc"}
    assert before == {"a": 3, "b": 3}
    assert after == {"a": 2, "b": 2, "c": 2}


def test_preferences_are_permutations_and_differ_between_replicas() -> None:
    orders = {name: preference(name, 8) for name in ("a", "b", "c", "d")}
    for order in orders.values():
        assert sorted(order) == list(range(8))
    assert len({order[0] for order in orders.values()}) > 1
    assert preference("a", 8) == orders["a"]


def test_lease_names_carry_the_shard_count() -> None:
    assert shard_lease_name(2, 4) == "milkyway-operator-shard-2-of-4"
    assert shard_lease_name(2, 4) != shard_lease_name(2, 8)


def test_member_leases_announce_the_count_their_replica_works_with() -> None:
    assert member_lease_name("op-a", 6).endswith("-of-6")
    assert member_lease_name("op-a", 6) != member_lease_name("op-a", 3)
    assert member_lease_name("op-a", 6) != member_lease_name("op-b", 6)
    assert count_in_name(member_lease_name("op-a", 12)) == 12
    assert count_in_name(shard_lease_name(1, 5)) == 5
    assert count_in_name("milkyway-operator-member-0123456789abcdef") is None


def test_the_shard_setting_is_a_count_or_auto() -> None:
    assert ShardSetting.parse("0") == ShardSetting(count=0)
    assert ShardSetting.parse(" 6 ") == ShardSetting(count=6)
    assert ShardSetting.parse("AUTO") == ShardSetting(auto=True)
    with pytest.raises(ValueError, match=r"--shards: 'three' is neither a number nor 'auto'"):
        ShardSetting.parse("three")
    with pytest.raises(ValueError, match=r"--shards: 257 is outside 0..256"):
        ShardSetting.parse("257")
    with pytest.raises(ValueError, match=r"a fixed count \(3\) and a Deployment to follow"):
        OperatorSettings(shards=3, shards_deployment="milkyway-operator")
    with pytest.raises(ValueError, match="shards need leader election"):
        OperatorSettings(shards_deployment="milkyway-operator", leader_election=False)


def test_bad_shard_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="shards must be between 1 and 256, got 0"):
        ShardingConfig(shards=0, namespace="n", identity="i")
    with pytest.raises(ValueError, match=r"shards must be between 0 .* got -1"):
        OperatorSettings(shards=-1)
    with pytest.raises(ValueError, match="shards need leader election"):
        OperatorSettings(shards=3, leader_election=False)


FLOW = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: slow}
spec:
  steps:
    - name: wait
      action: sharding.wait
"""


def _registry(release: asyncio.Event, started: asyncio.Event) -> TaskRegistry:
    registry = REGISTRY.copy()

    @registry.task("sharding.wait")
    async def wait(params: BaseModel, ctx: TaskContext) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {}

    return registry


async def test_a_replica_that_lost_the_shard_writes_the_run_no_more() -> None:
    store = MemoryStore()
    held = {"yes": True}
    fenced = FencedStore(store, lambda run: held["yes"])
    release, started = asyncio.Event(), asyncio.Event()
    engine = Engine(
        fenced,
        Catalog(load_flows(FLOW)),
        registry=_registry(release, started),
        engine_id="replica-a",
        poll_interval=0.02,
        lease_seconds=30.0,
        accepts=lambda run: held["yes"],
    )
    async with engine:
        name = await engine.submit("slow")
        await asyncio.wait_for(started.wait(), 10)
        running = await store.get(name)
        assert running.status.phase == "Running" and running.status.owner == "replica-a"
        writes = store.writes
        held["yes"] = False
        release.set()  # the task finishes after the shard was lost: its result is not written
        for _ in range(200):
            if engine.lost_runs:
                break
            await asyncio.sleep(0.02)
        assert engine.lost_runs == 1
        assert fenced.refused >= 1
        assert store.writes == writes
        assert (await store.get(name)).status == running.status
        await asyncio.sleep(0.3)  # scans go on: none takes the run up again
        assert engine.lost_runs == 1 and store.writes == writes
        with pytest.raises(Fenced, match="its shard is not held by this replica"):
            await fenced.replace_status(running)


async def test_an_engine_drives_only_the_runs_it_accepts_and_lets_go_of_the_rest() -> None:
    store = MemoryStore()
    release, started = asyncio.Event(), asyncio.Event()
    accepted = {"mine"}

    def accepts(run: Any) -> bool:
        return run.metadata.labels.get(APPLICATION_LABEL) in accepted

    engine = Engine(
        store,
        Catalog(load_flows(FLOW)),
        registry=_registry(release, started),
        engine_id="replica-a",
        poll_interval=0.02,
        accepts=accepts,
    )
    async with engine:
        mine = await engine.submit("slow", labels={APPLICATION_LABEL: "mine"})
        theirs = await engine.submit("slow", labels={APPLICATION_LABEL: "theirs"})
        await asyncio.wait_for(started.wait(), 10)
        await asyncio.sleep(0.2)
        assert (await store.get(mine)).status.owner == "replica-a"
        assert (await store.get(theirs)).status.phase == "Pending"
        assert not (await store.get(theirs)).status.owner
        accepted.clear()
        assert await engine.let_go(lambda run: not accepts(run)) == 1
        assert await engine.let_go(lambda run: not accepts(run)) == 0
        # Let go of without handing over: still leased to this engine (a lost shard).
        assert (await store.get(mine)).status.owner == "replica-a"


async def test_letting_go_with_hand_over_clears_the_lease_for_the_next_engine() -> None:
    store = MemoryStore()
    release, started = asyncio.Event(), asyncio.Event()
    serving = {"yes": True}
    engine = Engine(
        store,
        Catalog(load_flows(FLOW)),
        registry=_registry(release, started),
        engine_id="replica-a",
        poll_interval=0.02,
        lease_seconds=3600.0,
        accepts=lambda run: serving["yes"],
    )
    async with engine:
        name = await engine.submit("slow")
        await asyncio.wait_for(started.wait(), 10)
        serving["yes"] = False
        assert await engine.let_go(lambda run: True, hand_over=True) == 1
    handed = await store.get(name)
    assert handed.status.phase == "Running"
    assert handed.status.owner == "" and handed.status.lease_until == 0.0
    started.clear()
    release.set()
    async with Engine(
        store,
        Catalog(load_flows(FLOW)),
        registry=_registry(release, started),
        engine_id="replica-b",
        poll_interval=0.02,
        lease_seconds=3600.0,
    ) as successor:
        # With an hour-long lease, only the hand-over lets the successor in.
        done = await successor.wait(name, within=20)
    assert done.status.phase == "Succeeded"


def test_the_cli_refuses_shards_without_leader_election(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing-kubeconfig")
    result = CliRunner().invoke(
        app, ["operator", "run", "--kubeconfig", missing, "--shards", "3", "--no-leader-election"]
    )
    assert result.exit_code == 2, result.output
    assert "shards need leader election" in result.output
    from_env = CliRunner().invoke(
        app,
        ["operator", "run", "--kubeconfig", missing, "--no-leader-election"],
        env={"MILKYWAY_OPERATOR_SHARDS": "3"},
    )
    assert from_env.exit_code == 2 and "shards need leader election" in from_env.output
    negative = CliRunner().invoke(app, ["operator", "run", "--shards", "-1"])
    assert negative.exit_code == 2 and "--shards" in negative.output
    auto = CliRunner().invoke(
        app,
        ["operator", "run", "--kubeconfig", missing, "--shards", "auto", "--no-leader-election"],
    )
    assert auto.exit_code == 2 and "shards need leader election" in auto.output
    words = CliRunner().invoke(app, ["operator", "run", "--shards", "many"])
    assert words.exit_code == 2 and "'many' is neither a number nor 'auto'" in words.output

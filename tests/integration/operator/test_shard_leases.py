"""Shard Leases on a simulated API server: every shard held by exactly one replica, a dead
replica's shards taken over after their lease, a new replica given its share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from lightkube import AsyncClient
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.coordination_v1 import Lease
from tests.polling import eventually

from milkyway.kube.clients import client_from_kubeconfig
from milkyway.operator.shard_count import deployment_replicas
from milkyway.operator.sharding import (
    MEMBER_LEASE_PREFIX,
    CountSource,
    ShardingConfig,
    ShardLeases,
    shard_lease_name,
)
from milkyway.sim.clusters import SimulatedClusters

from .conftest import operator_deployment

SHARDS = 6
FAST = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1}


@pytest.fixture
async def client(sim: SimulatedClusters) -> AsyncIterator[AsyncClient]:
    c = client_from_kubeconfig(sim.kubeconfig_path, "c1")
    yield c
    await c.close()


class Replica:
    """One replica's shard Leases, with a log of its work starting and stopping. With
    ``fleet``, every acquisition asserts that no replica of the fleet works under another
    shard count (two counts split the Applications differently: their shards overlap)."""

    def __init__(
        self,
        client: AsyncClient,
        identity: str,
        *,
        release: bool = True,
        shards: int = SHARDS,
        count_source: CountSource | None = None,
        fleet: list[Replica] | None = None,
    ) -> None:
        self.identity = identity
        self.working: set[int] = set()
        self.events: list[tuple[str, int, bool]] = []
        self.fleet = fleet
        self.leases = ShardLeases(
            client,
            ShardingConfig(
                shards=shards,
                namespace="default",
                identity=identity,
                release_on_cancel=release,
                **FAST,
            ),
            on_acquired=self._acquired,
            on_lost=self._lost,
            count_source=count_source,
        )
        self.task: asyncio.Task[None] | None = None
        if fleet is not None:
            fleet.append(self)

    async def _acquired(self, shard: int) -> None:
        for other in self.fleet or []:
            if other is not self and other.working:
                assert other.leases.count == self.leases.count, (
                    f"{self.identity} took shard {shard} of {self.leases.count} while "
                    f"{other.identity} works on {sorted(other.working)} of {other.leases.count}"
                )
        self.working.add(shard)
        self.events.append(("acquired", shard, True))

    async def _lost(self, shard: int, graceful: bool) -> None:
        self.working.discard(shard)
        self.events.append(("lost", shard, graceful))

    def start(self) -> Replica:
        self.task = asyncio.create_task(self.leases.run())
        return self

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def holders(client: AsyncClient) -> dict[int, str | None]:
    found: dict[int, str | None] = {}
    for shard in range(SHARDS):
        try:
            lease = await client.get(Lease, shard_lease_name(shard, SHARDS), namespace="default")
        except Exception:
            found[shard] = None
            continue
        found[shard] = lease.spec.holderIdentity if lease.spec else None
    return found


def assert_disjoint(replicas: list[Replica]) -> None:
    """No shard's work runs on two replicas at once."""
    for i, a in enumerate(replicas):
        for b in replicas[i + 1 :]:
            assert not a.working & b.working, (a.identity, b.identity, a.working & b.working)


async def balanced(client: AsyncClient, replicas: list[Replica], share: set[int]) -> bool:
    assert_disjoint(replicas)
    if sorted(len(r.working) for r in replicas) != sorted(share_list(share, len(replicas))):
        return False
    owners = await holders(client)
    return all(owners[s] == r.identity for r in replicas for s in r.working)


def share_list(share: set[int], count: int) -> list[int]:
    """The shard counts expected of ``count`` replicas (``share`` lists the sizes)."""
    base, extra = divmod(SHARDS, count)
    assert share <= {base, base + 1}
    return [base + 1] * extra + [base] * (count - extra)


async def test_three_replicas_split_six_shards_and_take_over_from_a_dead_one(
    client: AsyncClient,
) -> None:
    a, b = Replica(client, "a").start(), Replica(client, "b").start()
    c = Replica(client, "c", release=False).start()
    replicas = [a, b, c]
    try:
        await eventually(
            lambda: balanced(client, replicas, {2}), within=30, what="2 shards per replica"
        )
        orphaned = set(c.working)
        await c.stop()  # dies: neither its shards nor its member Lease are released
        assert not c.working
        owners = await holders(client)
        assert {owners[s] for s in orphaned} == {"c"}

        async def taken_over() -> bool:
            assert_disjoint([a, b])
            return a.working | b.working == set(range(SHARDS))

        await eventually(taken_over, within=30, what="the dead replica's shards taken over")
        assert sorted((len(a.working), len(b.working))) == [3, 3]
        # The survivors waited for the leases of the dead one to expire: they took them.
        taken = [e for r in (a, b) for e in r.events if e[0] == "acquired" and e[1] in orphaned]
        assert {shard for _, shard, _ in taken} == orphaned
    finally:
        for replica in replicas:
            await replica.stop()


async def test_a_new_replica_gets_its_share_and_shards_are_handed_over_gracefully(
    client: AsyncClient,
) -> None:
    a, b = Replica(client, "a").start(), Replica(client, "b").start()
    try:
        await eventually(
            lambda: balanced(client, [a, b], {3}), within=30, what="3 shards per replica"
        )
        c = Replica(client, "c").start()
        replicas = [a, b, c]
        await eventually(
            lambda: balanced(client, replicas, {2}), within=30, what="rebalanced to 2 each"
        )
        given_up = [e for r in (a, b) for e in r.events if e[0] == "lost"]
        assert len(given_up) == 2
        assert all(graceful for _, _, graceful in given_up), given_up
        assert {shard for _, shard, _ in given_up} == c.working
        await c.stop()  # a clean stop releases at once: the others take its shards back
        await eventually(lambda: balanced(client, [a, b], {3}), within=30, what="back to 3 each")
        members = [
            lease.metadata.name
            async for lease in client.list(Lease, namespace="default")
            if lease.metadata.name.startswith(MEMBER_LEASE_PREFIX)
        ]
        assert len(members) == 2
    finally:
        for replica in (a, b):
            await replica.stop()
    assert not [
        lease.metadata.name
        async for lease in client.list(Lease, namespace="default")
        if lease.spec.holderIdentity
    ]


async def test_a_dead_replicas_shards_expire_from_its_last_renewal_not_from_a_first_look(
    client: AsyncClient,
) -> None:
    """A replica at its share does not reach for other shards, yet it watches their
    Leases: once a dead holder counts as gone, its shards are free at once, not one more
    lease duration after the survivor first reached for them."""
    now = {"t": 0.0}

    def leases(identity: str, acquired: list[int]) -> ShardLeases:
        async def on_acquired(shard: int) -> None:
            acquired.append(shard)

        return ShardLeases(
            client,
            ShardingConfig(shards=SHARDS, namespace="default", identity=identity, **FAST),
            on_acquired=on_acquired,
            on_lost=_nothing_lost,
            clock=lambda: now["t"],
        )

    taken: list[int] = []
    survivor, dead = leases("survivor", taken), leases("dead", [])
    await survivor.step()  # alone: all six
    await dead.step()  # a share of three, none free yet
    now["t"] = 0.1
    await survivor.step()  # gives three up
    now["t"] = 0.2
    await dead.step()  # takes them, then dies without a word
    assert len(dead.held) == 3 and len(survivor.held) == 3
    orphaned = set(dead.held)
    taken.clear()
    now["t"] = 1.0
    await survivor.step()  # at its share: reaches for nothing, sees the dead one's renewal
    assert survivor.members == ["dead", "survivor"] and not taken
    now["t"] = 2.1  # the dead one's member and shard Leases unchanged for over a lease
    await survivor.step()
    assert survivor.members == ["survivor"]
    assert set(taken) == orphaned
    assert await holders(client) == dict.fromkeys(range(SHARDS), "survivor")


async def _nothing_lost(shard: int, graceful: bool) -> None:
    pass


async def scale(client: AsyncClient, replicas: int) -> None:
    patch = {"spec": {"replicas": replicas}}
    await client.patch(Deployment, "milkyway-operator", patch, namespace="default")


async def test_auto_shards_follow_the_deployment_and_never_work_under_two_counts(
    client: AsyncClient,
) -> None:
    """``--shards auto``: the count is the Deployment's replica count. Scaling it moves
    every replica to the new count, and no shard of one count is taken while a replica
    still works under the other (asserted at every acquisition)."""
    await client.create(operator_deployment("default", 2), namespace="default")
    source = deployment_replicas(client, "default", "milkyway-operator")
    fleet: list[Replica] = []
    a = Replica(client, "a", shards=2, count_source=source, fleet=fleet).start()
    b = Replica(client, "b", shards=2, count_source=source, fleet=fleet).start()
    try:

        async def split(count: int, replicas: list[Replica]) -> bool:
            assert_disjoint(replicas)
            counts = {r.leases.count for r in replicas}
            held = sorted(s for r in replicas for s in r.working)
            return counts == {count} and held == list(range(count))

        await eventually(lambda: split(2, [a, b]), within=30, what="2 shards, one each")
        await scale(client, 3)
        c = Replica(client, "c", shards=3, count_source=source, fleet=fleet).start()
        await eventually(lambda: split(3, [a, b, c]), within=30, what="3 shards, one each")
        assert [len(r.working) for r in (a, b, c)] == [1, 1, 1]
        owners = await holders_of(client, 3)
        assert {owners[s] for s in range(3)} == {"a", "b", "c"}
        # Every shard of the old count was given up gracefully before the switch.
        for replica in (a, b):
            assert all(g for kind, _, g in replica.events if kind == "lost"), replica.events
        await scale(client, 1)
        await c.stop()
        await eventually(lambda: split(1, [a, b]), within=30, what="1 shard")

        async def old_counts_forgotten() -> bool:
            names = [lease.metadata.name async for lease in client.list(Lease, namespace="default")]
            return not [n for n in names if n.endswith(("-of-2", "-of-3"))]

        # Shard Leases of the counts no longer in use are deleted once they have not
        # changed for five lease durations (a second each here).
        await eventually(old_counts_forgotten, within=30, what="the old counts' Leases deleted")
    finally:
        for replica in fleet:
            if replica.task is not None:
                await replica.stop()


async def test_a_replica_with_another_count_takes_nothing_until_the_other_is_gone(
    client: AsyncClient,
) -> None:
    """Two fixed counts (a misconfigured rollout): the replica that comes second waits,
    and says why, instead of reconciling Applications the first one's shards hold."""
    fleet: list[Replica] = []
    six = Replica(client, "six", shards=6, fleet=fleet).start()
    await eventually(lambda: _holds(six, 6), within=30, what="all six shards held")
    three = Replica(client, "three", shards=3, fleet=fleet).start()
    try:
        await eventually(
            lambda: _sees_other_count(three, "six", 6), within=30, what="the other count seen"
        )
        for _ in range(10):
            await asyncio.sleep(0.1)
            assert not three.working
        assert len(six.working) == 6  # the first keeps working: it is not told to stop
        await six.stop()
        await eventually(lambda: _holds(three, 3), within=30, what="three shards taken")
    finally:
        for replica in fleet:
            await replica.stop()


async def _holds(replica: Replica, count: int) -> bool:
    return len(replica.working) == count


async def _sees_other_count(replica: Replica, other: str, count: int) -> bool:
    return replica.leases.other_counts.get(other) == count


async def holders_of(client: AsyncClient, shards: int) -> dict[int, str | None]:
    found: dict[int, str | None] = {}
    for shard in range(shards):
        lease = await client.get(Lease, shard_lease_name(shard, shards), namespace="default")
        found[shard] = lease.spec.holderIdentity if lease.spec else None
    return found

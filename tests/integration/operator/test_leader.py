"""Leader election with a Lease on a simulated API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from lightkube import AsyncClient
from lightkube.resources.coordination_v1 import Lease

from milkyway.kube.clients import client_from_kubeconfig
from milkyway.operator.leader import LeaderElectionConfig, LeaderElector
from milkyway.sim.clusters import SimulatedClusters

FAST = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1}


@pytest.fixture
async def client(sim: SimulatedClusters) -> AsyncIterator[AsyncClient]:
    c = client_from_kubeconfig(sim.kubeconfig_path, "c1")
    yield c
    await c.close()


def elector(client: AsyncClient, identity: str, **kw: object) -> LeaderElector:
    config = LeaderElectionConfig(
        name="milkyway-operator", namespace="default", identity=identity, **{**FAST, **kw}
    )
    return LeaderElector(client, config)


class Worker:
    """A leader's work: records that it ran, then runs until cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def __call__(self) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_timings_must_nest() -> None:
    with pytest.raises(ValueError, match="lease_duration > renew_deadline > retry_period"):
        LeaderElectionConfig(name="x", namespace="y", identity="z", renew_deadline=20.0)


async def test_one_leader_and_a_standby_that_takes_over_when_it_dies(
    client: AsyncClient,
) -> None:
    first, second = Worker(), Worker()
    a = elector(client, "a", release_on_cancel=False)
    b = elector(client, "b")
    run_a = asyncio.create_task(a.run(first))
    await asyncio.wait_for(first.started.wait(), 5)
    run_b = asyncio.create_task(b.run(second))
    await asyncio.sleep(0.5)
    assert a.is_leader and not b.is_leader and not second.started.is_set()
    lease = await client.get(Lease, "milkyway-operator", namespace="default")
    assert lease.spec.holderIdentity == "a"

    await stop(run_a)  # dies without releasing: b must wait for the lease to expire
    assert first.cancelled
    await asyncio.wait_for(second.started.wait(), 5)
    lease = await client.get(Lease, "milkyway-operator", namespace="default")
    assert lease.spec.holderIdentity == "b"
    assert lease.spec.leaseTransitions == 1
    await stop(run_b)


async def test_a_leader_that_stops_releases_the_lease(client: AsyncClient) -> None:
    first, second = Worker(), Worker()
    a = elector(client, "a", lease_duration=30.0, renew_deadline=20.0)
    b = elector(client, "b", lease_duration=30.0, renew_deadline=20.0)
    run_a = asyncio.create_task(a.run(first))
    await asyncio.wait_for(first.started.wait(), 5)
    run_b = asyncio.create_task(b.run(second))
    await stop(run_a)
    # Well before the 30 s lease would expire: the release let b in at once.
    await asyncio.wait_for(second.started.wait(), 5)
    assert b.is_leader and not a.is_leader
    await stop(run_b)


async def test_leader_whose_lease_is_taken_stops_its_work(client: AsyncClient) -> None:
    work = Worker()
    a = elector(client, "a")
    run_a = asyncio.create_task(a.run(work))
    await asyncio.wait_for(work.started.wait(), 5)
    lease = await client.get(Lease, "milkyway-operator", namespace="default")
    lease.spec.holderIdentity = "intruder"
    lease.spec.leaseDurationSeconds = 3600
    await client.replace(lease)
    await asyncio.wait_for(run_a, 5)
    assert work.cancelled and not a.is_leader
    lease = await client.get(Lease, "milkyway-operator", namespace="default")
    assert lease.spec.holderIdentity == "intruder"


async def test_finished_work_releases_the_lease(client: AsyncClient) -> None:
    a = elector(client, "a")

    async def short() -> None:
        await asyncio.sleep(0.05)

    await asyncio.wait_for(a.run(short), 5)
    lease = await client.get(Lease, "milkyway-operator", namespace="default")
    assert lease.spec.holderIdentity is None

"""Leader election decisions against an in-memory Lease store and a controlled clock:
expiry is judged by the candidate's own clock, never by the holder's timestamps."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from lightkube import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta, Status
from lightkube.resources.coordination_v1 import Lease

from milkyway.operator.leader import LeaderElectionConfig, LeaderElector


def api_error(code: int) -> ApiError:
    error = ApiError.__new__(ApiError)
    error.status = Status(code=code, message=str(code))
    return error


class Leases:
    """get/create/replace of one namespace's Leases with resourceVersion preconditions."""

    def __init__(self) -> None:
        self.items: dict[str, Lease] = {}
        self.version = 0

    async def get(self, _resource: type, name: str, *, namespace: str) -> Lease:
        if name not in self.items:
            raise api_error(404)
        return copy.deepcopy(self.items[name])

    async def create(self, lease: Lease) -> Lease:
        name = lease.metadata.name
        if name in self.items:
            raise api_error(409)
        return self._store(lease)

    async def replace(self, lease: Lease) -> Lease:
        current = self.items[lease.metadata.name]
        if lease.metadata.resourceVersion != current.metadata.resourceVersion:
            raise api_error(409)
        return self._store(lease)

    def _store(self, lease: Lease) -> Lease:
        self.version += 1
        stored = copy.deepcopy(lease)
        stored.metadata.resourceVersion = str(self.version)
        self.items[stored.metadata.name] = stored
        return copy.deepcopy(stored)

    def put(self, holder: str, renewed: datetime, duration: int = 10) -> None:
        self._store(
            Lease(
                metadata=ObjectMeta(name="lead", namespace="ns"),
                spec=LeaseSpec(
                    holderIdentity=holder, leaseDurationSeconds=duration, renewTime=renewed
                ),
            )
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def candidate(store: Leases, clock: Clock, identity: str = "b") -> LeaderElector:
    config = LeaderElectionConfig(
        name="lead",
        namespace="ns",
        identity=identity,
        lease_duration=10.0,
        renew_deadline=5.0,
        retry_period=1.0,
    )
    return LeaderElector(store, config, clock=clock)  # type: ignore[arg-type]


async def test_first_candidate_creates_the_lease() -> None:
    store, clock = Leases(), Clock()
    elector = candidate(store, clock)
    assert await elector.try_acquire_or_renew()
    assert elector.is_leader
    assert store.items["lead"].spec.holderIdentity == "b"


async def test_a_lease_renewed_long_ago_by_the_holders_clock_is_not_stolen_at_once() -> None:
    store, clock = Leases(), Clock()
    store.put("a", datetime.now(UTC) - timedelta(days=1))  # the holder's clock is far behind
    elector = candidate(store, clock)
    assert not await elector.try_acquire_or_renew()
    clock.now += 9.0
    assert not await elector.try_acquire_or_renew()
    clock.now += 2.0  # unchanged for longer than the lease duration, by our own clock
    assert await elector.try_acquire_or_renew()
    lease = store.items["lead"]
    assert lease.spec.holderIdentity == "b" and lease.spec.leaseTransitions == 1


async def test_a_holder_that_keeps_renewing_keeps_the_lease_whatever_its_timestamps() -> None:
    store, clock = Leases(), Clock()
    skewed = datetime.now(UTC) - timedelta(days=1)
    store.put("a", skewed)
    elector = candidate(store, clock)
    for step in range(5):
        clock.now += 6.0
        store.put("a", skewed + timedelta(seconds=step + 1))  # a renews: the record changes
        assert not await elector.try_acquire_or_renew()
    assert not elector.is_leader


async def test_a_released_lease_is_taken_at_once() -> None:
    store, clock = Leases(), Clock()
    store.put("", datetime.now(UTC), duration=1)
    assert await candidate(store, clock).try_acquire_or_renew()


async def test_losing_a_race_for_the_lease_is_not_an_error() -> None:
    store, clock = Leases(), Clock()
    store.put("", datetime.now(UTC), duration=1)
    first, second = candidate(store, clock, "a"), candidate(store, clock, "b")
    original_get = store.get
    seen: list[Lease] = []

    async def stale_get(resource: type, name: str, *, namespace: str) -> Lease:
        if not seen:
            seen.append(await original_get(resource, name, namespace=namespace))
        return copy.deepcopy(seen[0])

    store.get = stale_get  # type: ignore[method-assign]
    assert await first.try_acquire_or_renew()
    assert not await second.try_acquire_or_renew()  # its write carries a stale version: 409
    assert store.items["lead"].spec.holderIdentity == "a"


@pytest.mark.parametrize("bad", [(10.0, 10.0, 1.0), (10.0, 5.0, 5.0), (10.0, 5.0, 0.0)])
def test_timings_must_nest(bad: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError, match="lease_duration > renew_deadline > retry_period > 0"):
        LeaderElectionConfig("x", "y", "z", *bad)

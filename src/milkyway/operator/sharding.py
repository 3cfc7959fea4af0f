"""Sharding Applications across operator replicas, one ``coordination.k8s.io`` Lease a shard.

An Application belongs to shard ``sha256("namespace/name") mod N``: the split depends on
nothing but the name and ``N``, so every replica computes the same one, across restarts
and versions. A FlowRun belongs to the shard of the Application it is labelled with (a
run without one, started by hand, to the shard of its own name).

Each shard is a Lease ``milkyway-operator-shard-<i>-of-<N>``, taken and renewed exactly as
the leader Lease is (:class:`~milkyway.operator.leader.LeaderElector`: resourceVersion
preconditions on every write, expiry judged on the candidate's own clock). Each replica
also renews a member Lease of its own (``milkyway-operator-member-…``), so every replica
knows how many are alive and takes its fair share: with ``m`` replicas alive, the first
``N mod m`` of them (ordered by identity) hold ``ceil(N / m)`` shards and the others
``floor(N / m)``. A replica above its share releases shards (after stopping their work);
one below takes free or expired ones, in an order of its own (rendezvous hashing), so
replicas starting together rarely reach for the same shard.

A replica that cannot renew a shard within ``renew_deadline`` stops its work, before the
Lease can expire for the others (``lease_duration``), and :meth:`ShardLeases.holds`
answers False from that moment on even if the renewal loop itself is stalled: the
operator refuses every FlowRun write of a shard it does not hold.

The count ``N`` itself may change while replicas run (``--shards auto`` follows the
replica count of the operator's Deployment). Two counts split the Applications
differently, so a shard of one overlaps shards of the other: replicas must never work
under two counts at once. Each replica names its count in its member Lease
(``…-of-N``), and takes a shard only while every live replica announces the same count
and no shard Lease of another count is held; a replica that changes its count first
stops the work of every shard it holds and releases them, then announces the new count.
The change costs a pause (every replica releases, then all take shards again), bounded
by the retry period while every replica is alive, by ``lease_duration`` when one died.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from time import monotonic

from lightkube import ApiError, AsyncClient
from lightkube.resources.coordination_v1 import Lease

from milkyway.kube.errors import TRANSPORT_ERRORS
from milkyway.kube.labels import APPLICATION as APPLICATION_LABEL
from milkyway.kube.reachability import ReachabilityLog
from milkyway.model.flow import FlowRun
from milkyway.operator.health.schedule import HEALTH_LABEL
from milkyway.operator.leader import LeaderElectionConfig, LeaderElector

log = logging.getLogger("milkyway.operator.sharding")

SHARD_LEASE_PREFIX = "milkyway-operator-shard-"
MEMBER_LEASE_PREFIX = "milkyway-operator-member-"
MAX_SHARDS = 256
"""Each shard costs one Lease renewal per retry period and replica holding it."""
FORGET_MEMBER_AFTER = 5
"""A member Lease silent for this many lease durations is deleted (its replica died), and
so is a shard Lease of a count no longer in use."""


def shard_of(namespace: str, name: str, shards: int) -> int:
    """The shard of the object ``namespace/name``: stable across processes and versions
    (a cryptographic hash, not Python's per-process ``hash``)."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def shard_of_run(run: FlowRun, shards: int) -> int:
    """A FlowRun's shard: its Application's, so one replica drives every run of it: the
    runs that change it and the health reports of it (which carry the Application in
    their own label, not as one of its flows). The health report reads the Application's
    rendering, which only the replica reconciling it holds: driven by another, it failed
    after its retries."""
    labels = run.metadata.labels
    application = labels.get(APPLICATION_LABEL) or labels.get(HEALTH_LABEL)
    return shard_of(run.metadata.namespace or "", application or run.metadata.name, shards)


def fair_share(shards: int, members: Iterable[str], identity: str) -> int:
    """How many shards ``identity`` should hold when ``members`` (itself included) are
    alive: the first ``shards mod m`` members by identity hold one more than the rest."""
    ordered = sorted(set(members) | {identity})
    base, extra = divmod(shards, len(ordered))
    return base + (1 if ordered.index(identity) < extra else 0)


def preference(identity: str, shards: int) -> list[int]:
    """The order in which ``identity`` reaches for shards (rendezvous hashing): each
    replica has its own, so replicas starting together rarely race for the same Lease,
    and the same replica prefers the same shards again after a restart."""

    def weight(shard: int) -> bytes:
        return hashlib.sha256(f"{identity}#{shard}".encode()).digest()

    return sorted(range(shards), key=weight, reverse=True)


def shard_lease_name(shard: int, shards: int) -> str:
    """Names carry ``N``: replicas started with a different ``--shards`` never share one."""
    return f"{SHARD_LEASE_PREFIX}{shard}-of-{shards}"


def member_lease_name(identity: str, shards: int) -> str:
    """A replica's member Lease; its name announces the shard count it works with."""
    return f"{MEMBER_LEASE_PREFIX}{hashlib.sha256(identity.encode()).hexdigest()[:16]}-of-{shards}"


_COUNT = re.compile(r"-of-(\d+)$")


def count_in_name(name: str) -> int | None:
    """The shard count a shard or member Lease name carries (None: a name without one)."""
    found = _COUNT.search(name)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class ShardingConfig:
    """``shards`` Leases in ``namespace``; timings as for the leader Lease."""

    shards: int
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True
    """Release the Leases when stopped; off, they are left to expire (as after a crash)."""

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= MAX_SHARDS:
            raise ValueError(
                f"shards must be between 1 and {MAX_SHARDS}, got {self.shards}; "
                "use about as many shards as replicas, or a small multiple of it"
            )

    def lease(self, name: str) -> LeaderElectionConfig:
        return LeaderElectionConfig(
            name=name,
            namespace=self.namespace,
            identity=self.identity,
            lease_duration=self.lease_duration,
            renew_deadline=self.renew_deadline,
            retry_period=self.retry_period,
        )


ShardHook = Callable[[int], Awaitable[None]]
CountSource = Callable[[], Awaitable[int]]
"""Reads the shard count wanted now (``--shards auto``: the Deployment's replica count)."""
LossHook = Callable[[int, bool], Awaitable[None]]
"""``(shard, graceful)``: graceful while the shard is still held (a rebalance or a stop),
so its runs may still be handed over; not graceful once it is lost."""


@dataclass
class _Observed:
    record: tuple[str, str]
    at: float
    duration: float = field(default=0.0)


class ShardLeases:
    """Takes, renews, balances and gives up this replica's shard Leases.

    ``on_acquired(shard)`` runs once a shard is held (start its work);
    ``on_lost(shard, graceful)`` runs before a shard is released (graceful: it is still
    held, its runs may be handed over) and as soon as it is lost (stop its work).
    """

    def __init__(
        self,
        client: AsyncClient,
        config: ShardingConfig,
        *,
        on_acquired: ShardHook,
        on_lost: LossHook,
        clock: Callable[[], float] = monotonic,
        reachability: ReachabilityLog | None = None,
        count_source: CountSource | None = None,
    ) -> None:
        self._client = client
        self.config = config
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._clock = clock
        self._count_source = count_source
        self.reachability = reachability or ReachabilityLog("of the shard leases")
        self._renewed: dict[int, float] = {}
        """Held shards, by when (this process's clock) their Lease was last renewed."""
        self._releasing: set[int] = set()
        """Held shards being given up: their work stops, their writes are still allowed."""
        self._observed: dict[str, _Observed] = {}
        self.members: list[str] = [config.identity]
        """The replicas alive at the last look, this one included."""
        self.other_counts: dict[str, int | None] = {}
        """Live replicas working with another shard count, or holding a shard Lease of
        one, by identity: while any is known, no shard is taken."""
        self._disagreement_logged: frozenset[tuple[str, int | None]] = frozenset()
        self.changed = asyncio.Event()
        """Set whenever the held shards change (tests and benchmarks wait on it)."""
        self._use_count(config.shards)

    def _use_count(self, shards: int) -> None:
        """Build the Lease electors of ``shards`` shards (nothing may be held)."""
        assert not self._renewed
        self.config = replace(self.config, shards=shards)
        self._electors = [
            LeaderElector(
                self._client,
                self.config.lease(shard_lease_name(i, shards)),
                clock=self._clock,
                reachability=self.reachability,
            )
            for i in range(shards)
        ]
        self._member = LeaderElector(
            self._client,
            self.config.lease(member_lease_name(self.config.identity, shards)),
            clock=self._clock,
            reachability=self.reachability,
        )
        self._order = preference(self.config.identity, shards)
        self._shard_names = {shard_lease_name(i, shards): i for i in range(shards)}

    @property
    def count(self) -> int:
        """The shard count this replica works with now."""
        return self.config.shards

    # --- what is held -------------------------------------------------------------------

    def holds(self, shard: int) -> bool:
        """True while ``shard`` is held *and* renewed within the renew deadline: a stalled
        renewal loop cannot make a replica believe it still holds a shard. What may be
        written (the fence)."""
        renewed = self._renewed.get(shard)
        return renewed is not None and self._clock() - renewed < self.config.renew_deadline

    def serves(self, shard: int) -> bool:
        """Held and not being given up: what may be started (reconciles, run drivers)."""
        return shard not in self._releasing and self.holds(shard)

    @property
    def held(self) -> frozenset[int]:
        return frozenset(s for s in self._renewed if self.serves(s))

    def owns(self, namespace: str, name: str) -> bool:
        """Whether this replica reconciles the Application ``namespace/name`` now."""
        return self.serves(shard_of(namespace, name, self.config.shards))

    def owns_run(self, run: FlowRun) -> bool:
        """Whether this replica drives ``run`` now."""
        return self.serves(shard_of_run(run, self.config.shards))

    def may_write_run(self, run: FlowRun) -> bool:
        """Whether this replica may still write ``run`` (the fence)."""
        return self.holds(shard_of_run(run, self.config.shards))

    # --- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Balance every retry period until cancelled; then stop the work of every held
        shard and release its Lease (and the member Lease) so others take over at once."""
        try:
            while True:
                await self.step()
                await asyncio.sleep(self.config.retry_period)
        finally:
            if self.config.release_on_cancel:
                await asyncio.shield(self._give_up_all())
            else:
                await asyncio.shield(self._stop_all())

    async def step(self) -> None:
        """One round: follow the wanted count, renew, drop what could not be renewed, then
        move toward the share (taking nothing while another count is at work)."""
        await self._follow_count()
        try:
            await self._member.try_acquire_or_renew()
            self.members = await self._alive_members()
        except (ApiError, *TRANSPORT_ERRORS) as exc:
            if not self.reachability.failed(exc, "listing operator replicas"):
                log.warning("listing operator replicas failed: %s", exc)
        await self._renew_held()
        peers = [m for m in self.members if m not in self.other_counts]
        target = fair_share(self.config.shards, peers, self.config.identity)
        held = [s for s in self._order if s in self._renewed]
        for shard in reversed(held[target:]):
            await self._release(shard)
        if self._log_disagreement():
            return
        if len(held) < target:
            await self._acquire(target - len(held))

    async def _follow_count(self) -> None:
        """With a count source, switch to the count it reads: stop and release every
        shard, retire the member Lease announcing the old count, announce the new one."""
        if self._count_source is None:
            return
        try:
            wanted = await self._count_source()
        except (ApiError, *TRANSPORT_ERRORS) as exc:
            if not self.reachability.failed(exc, "reading the shard count"):
                log.warning("reading the shard count failed, keeping %d: %s", self.count, exc)
            return
        if wanted == self.count:
            return
        if not 1 <= wanted <= MAX_SHARDS:
            log.warning(
                "wanted shard count %d is outside 1..%d; keeping %d", wanted, MAX_SHARDS, self.count
            )
            return
        log.info("%s: shard count %d -> %d", self.config.identity, self.count, wanted)
        await self._give_up_all()
        self._use_count(wanted)
        self.changed.set()

    def _log_disagreement(self) -> bool:
        """Whether another count is at work; logged once each time the set changes."""
        seen = frozenset(self.other_counts.items())
        if seen != self._disagreement_logged and seen:
            others = ", ".join(
                f"{who} ({count if count is not None else 'no count'})"
                for who, count in sorted(self.other_counts.items())
            )
            log.warning(
                "%s works with %d shards, other replicas with another count: %s; no shard "
                "is taken until every replica works with the same count",
                self.config.identity,
                self.count,
                others,
            )
        self._disagreement_logged = seen
        return bool(seen)

    async def _renew_held(self) -> None:
        shards = list(self._renewed)
        # The renewal counts from before it was sent: the fence errs on the safe side.
        sent = self._clock()
        results = await asyncio.gather(*(self._attempt(s) for s in shards))
        for shard, renewed in zip(shards, results, strict=True):
            if renewed:
                self._renewed[shard] = sent
            elif not self.holds(shard) or not self._electors[shard].is_leader:
                self._renewed.pop(shard, None)
                log.warning("%s lost shard %d", self.config.identity, shard)
                self.changed.set()
                await self._on_lost(shard, False)

    async def _acquire(self, wanted: int) -> None:
        for shard in self._order:
            if wanted <= 0:
                return
            if shard in self._renewed:
                continue
            sent = self._clock()
            if await self._attempt(shard):
                self._renewed[shard] = sent
                wanted -= 1
                log.info("%s holds shard %d", self.config.identity, shard)
                self.changed.set()
                await self._on_acquired(shard)

    async def _release(self, shard: int) -> None:
        """Stop the shard's work (handing its runs over while the shard is still held),
        then give the Lease up: the next holder starts where this one stopped."""
        self._releasing.add(shard)
        self.changed.set()
        try:
            await self._on_lost(shard, self.holds(shard))
        finally:
            self._renewed.pop(shard, None)
            self._releasing.discard(shard)
        await self._electors[shard].release()
        log.info("%s released shard %d", self.config.identity, shard)

    async def _attempt(self, shard: int) -> bool:
        try:
            return await self._electors[shard].try_acquire_or_renew()
        except (ApiError, *TRANSPORT_ERRORS) as exc:
            if not self.reachability.failed(exc, f"lease of shard {shard}"):
                log.warning("lease of shard %d: %s", shard, exc)
            return False

    async def _stop_all(self) -> None:
        for shard in list(self._renewed):
            self._renewed.pop(shard, None)
            with contextlib.suppress(Exception):
                await self._on_lost(shard, False)

    async def _give_up_all(self) -> None:
        for shard in list(self._renewed):
            with contextlib.suppress(Exception):
                await self._release(shard)
        with contextlib.suppress(ApiError, *TRANSPORT_ERRORS):
            await self._client.delete(
                Lease,
                member_lease_name(self.config.identity, self.count),
                namespace=self.config.namespace,
            )

    # --- membership ---------------------------------------------------------------------

    async def _alive_members(self) -> list[str]:
        """Holders of member Leases whose record changed within their duration, judged on
        this replica's clock (as lease expiry is: clock skew between replicas is moot).
        The same listing feeds the shard Leases' expiry clocks."""
        now = self._clock()
        alive = {self.config.identity}
        other_counts: dict[str, int | None] = {}
        seen: set[str] = set()
        async for lease in self._client.list(Lease, namespace=self.config.namespace):
            name = lease.metadata.name if lease.metadata else None
            if not name or lease.spec is None:
                continue
            shard = self._shard_names.get(name)
            if shard is not None:
                if shard not in self._renewed:
                    # Watch the shards held elsewhere too: a dead holder's lease then
                    # expires for this replica ``lease_duration`` after its last renewal,
                    # not after the first time this replica reached for it.
                    self._electors[shard].observe(lease.spec)
                continue
            member = name.startswith(MEMBER_LEASE_PREFIX)
            if not member and not name.startswith(SHARD_LEASE_PREFIX):
                continue
            seen.add(name)
            record = (lease.spec.holderIdentity or "", str(lease.spec.renewTime))
            duration = float(lease.spec.leaseDurationSeconds or self.config.lease_duration)
            observed = self._observed.get(name)
            if observed is None or observed.record != record:
                observed = self._observed[name] = _Observed(record, now, duration)
            silent = now - observed.at
            live = bool(record[0]) and silent <= duration
            count = count_in_name(name)
            if live and (member or record[0] != self.config.identity):
                if count != self.count:
                    # A member announcing another count, or a shard of another count
                    # still held: its Applications overlap this count's shards.
                    other_counts[record[0]] = count
                if member:
                    alive.add(record[0])
            elif silent > FORGET_MEMBER_AFTER * duration:
                # A replica gone for good, or a shard of a count no longer in use.
                await self._forget(name)
        for name in set(self._observed) - seen:
            del self._observed[name]
        other_counts.pop(self.config.identity, None)
        self.other_counts = other_counts
        return sorted(alive)

    async def _forget(self, name: str) -> None:
        with contextlib.suppress(ApiError, *TRANSPORT_ERRORS):
            await self._client.delete(Lease, name, namespace=self.config.namespace)
        self._observed.pop(name, None)

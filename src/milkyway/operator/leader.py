"""Leader election with a ``coordination.k8s.io/v1`` Lease, as client-go does it.

Several operator replicas may run; only the holder of the Lease reconciles and advances
flows. Each write to the Lease carries the resourceVersion that was read, so two
candidates can never both believe they took it. A candidate judges expiry by its *own*
clock — the time it last saw the lease record change — so clock skew between replicas
cannot make it steal a live lease. A leader that cannot renew within ``renew_deadline``
stops leading (its work is cancelled) before the lease can expire for the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from time import monotonic

from lightkube import ApiError, AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from milkyway.kube.errors import TRANSPORT_ERRORS
from milkyway.kube.reachability import ReachabilityLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaderElectionConfig:
    """Timings in seconds; the defaults are client-go's (15 s lease, 10 s renew, 2 s retry)."""

    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True
    """Give the lease up when stopped, so a standby need not wait for it to expire."""

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError(
                "leader election needs lease_duration > renew_deadline > retry_period > 0, got "
                f"{self.lease_duration}, {self.renew_deadline}, {self.retry_period}"
            )


class LeaderElector:
    """Acquires and renews one Lease; runs the leader's work only while it holds it."""

    def __init__(
        self,
        client: AsyncClient,
        config: LeaderElectionConfig,
        clock: Callable[[], float] = monotonic,
        reachability: ReachabilityLog | None = None,
    ) -> None:
        self._client = client
        self._config = config
        self._clock = clock
        self.reachability = reachability or ReachabilityLog("of the lease")
        self._observed_record: tuple[str, str] | None = None
        self._observed_at = 0.0
        self.is_leader = False

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Wait to become leader, then run ``lead()`` until it returns or leadership is lost.

        Returns when ``lead`` finishes (the lease is released so a standby takes over at
        once) or when renewal fails (``lead`` is cancelled first, and the lease is left to
        expire: another replica may already hold it). Cancelling ``run`` cancels ``lead``
        and, if ``release_on_cancel``, releases the lease.
        """
        # Polling is the protocol: the lease is another process's state on the server.
        while not await self._attempt():  # noqa: ASYNC110
            await asyncio.sleep(self._config.retry_period)
        log.info("%s became leader of lease %s", self._config.identity, self._config.name)
        work = asyncio.create_task(lead())
        renew = asyncio.create_task(self._keep_renewing())
        lost = False
        try:
            done, _ = await asyncio.wait({work, renew}, return_when=asyncio.FIRST_COMPLETED)
            if renew in done:
                lost = True
                log.warning("%s lost leadership; stopping its work", self._config.identity)
            else:
                work.result()
        finally:
            for task in (work, renew):
                task.cancel()
            for task in (work, renew):
                # A failure of ``work`` was raised by ``work.result()`` above already.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if not lost and self.is_leader and self._config.release_on_cancel:
                await asyncio.shield(self.release())
            self.is_leader = False

    async def _attempt(self) -> bool:
        try:
            acquired = await self.try_acquire_or_renew()
        except (ApiError, *TRANSPORT_ERRORS) as exc:
            if not self.reachability.failed(exc, f"lease {self._config.name}"):
                log.warning("acquiring lease %s failed: %s", self._config.name, exc)
            return False
        self.reachability.succeeded()
        return acquired

    async def _keep_renewing(self) -> None:
        """Returns only when the lease could not be renewed within the renew deadline."""
        last_renewed = self._clock()
        while True:
            await asyncio.sleep(self._config.retry_period)
            renewed = await self._attempt()
            now = self._clock()
            if renewed:
                last_renewed = now
            elif now - last_renewed >= self._config.renew_deadline:
                self.is_leader = False
                return

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True if this candidate holds the lease afterwards."""
        cfg = self._config
        now = datetime.now(UTC)
        try:
            lease = await self._client.get(Lease, cfg.name, namespace=cfg.namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            fresh = Lease(
                metadata=ObjectMeta(name=cfg.name, namespace=cfg.namespace),
                spec=self._spec(now, transitions=0, acquired=now),
            )
            try:
                await self._client.create(fresh)
            except ApiError as create_error:
                if create_error.status.code == 409:
                    return False
                raise
            self._observe(fresh.spec, held=True)
            return True

        spec = lease.spec or LeaseSpec()
        holder = spec.holderIdentity or ""
        self._observe(spec)
        if holder and holder != cfg.identity and not self._expired(spec):
            self.is_leader = False
            return False
        transitions = spec.leaseTransitions or 0
        acquired = spec.acquireTime
        if holder != cfg.identity:
            transitions += 1
            acquired = now
        lease.spec = self._spec(now, transitions=transitions, acquired=acquired)
        try:
            await self._client.replace(lease)
        except ApiError as exc:
            if exc.status.code == 409:
                self.is_leader = False
                return False
            raise
        self._observe(lease.spec, held=True)
        return True

    async def release(self) -> None:
        """Give the lease up so a standby does not have to wait for it to expire."""
        cfg = self._config
        try:
            lease = await self._client.get(Lease, cfg.name, namespace=cfg.namespace)
            if lease.spec is None or lease.spec.holderIdentity != cfg.identity:
                return
            lease.spec.holderIdentity = None
            lease.spec.leaseDurationSeconds = 1
            await self._client.replace(lease)
        except ApiError as exc:
            log.warning("releasing lease %s failed: %s", cfg.name, exc)
        finally:
            self.is_leader = False

    def _spec(self, now: datetime, *, transitions: int, acquired: datetime | None) -> LeaseSpec:
        return LeaseSpec(
            holderIdentity=self._config.identity,
            leaseDurationSeconds=max(1, round(self._config.lease_duration)),
            acquireTime=acquired,
            renewTime=now,
            leaseTransitions=transitions,
        )

    def observe(self, spec: LeaseSpec) -> None:
        """Note the lease record as read elsewhere (a listing of every Lease): its expiry
        counts from when this candidate first saw the record, so looking often makes a
        dead holder's lease expire for it sooner, never a live holder's."""
        self._observe(spec)

    def _observe(self, spec: LeaseSpec, held: bool = False) -> None:
        record = (spec.holderIdentity or "", str(spec.renewTime))
        if record != self._observed_record:
            self._observed_record = record
            self._observed_at = self._clock()
        if held:
            self.is_leader = True

    def _expired(self, spec: LeaseSpec) -> bool:
        duration = spec.leaseDurationSeconds or self._config.lease_duration
        return self._clock() - self._observed_at > duration

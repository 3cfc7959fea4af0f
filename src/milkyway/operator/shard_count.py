"""How many shards the operator's replicas split the Applications into.

``--shards N`` fixes the count; ``--shards auto`` follows the replica count of the
operator's own Deployment (``spec.replicas``, read at start and at every round of the
shard Leases), so scaling the Deployment is all it takes to spread the work over more
replicas. The count is the Deployment's *desired* replica count, not the number of
replicas alive: a replica that dies leaves its shards to the others without the split
changing (a change of count pauses every replica's work, see
:mod:`milkyway.operator.sharding`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lightkube import AsyncClient
from lightkube.resources.apps_v1 import Deployment

from milkyway.operator.sharding import MAX_SHARDS, CountSource

AUTO = "auto"
DEFAULT_DEPLOYMENT = "milkyway-operator"


@dataclass(frozen=True)
class ShardSetting:
    """What ``--shards`` asked for: a fixed count (0: not sharded) or ``auto``."""

    count: int = 0
    auto: bool = False

    @classmethod
    def parse(cls, text: str) -> ShardSetting:
        value = text.strip().lower()
        if value == AUTO:
            return cls(auto=True)
        try:
            count = int(value)
        except ValueError:
            raise ValueError(
                f"--shards: {text!r} is neither a number nor 'auto'; give the shard count "
                f"(0 to {MAX_SHARDS}; 0: one leader does all) or 'auto' (the replica count "
                "of the operator's Deployment)"
            ) from None
        if not 0 <= count <= MAX_SHARDS:
            raise ValueError(
                f"--shards: {count} is outside 0..{MAX_SHARDS}; use about as many shards as "
                "replicas, or 'auto'"
            )
        return cls(count=count)


def deployment_replicas(client: AsyncClient, namespace: str, name: str) -> CountSource:
    """A count source reading ``spec.replicas`` of Deployment ``namespace/name`` (at least
    1: a Deployment scaled to zero runs no replica that would act on it)."""

    async def read() -> int:
        deployment = await client.get(Deployment, name, namespace=namespace)
        replicas = deployment.spec.replicas if deployment.spec is not None else None
        return max(1, min(MAX_SHARDS, 1 if replicas is None else replicas))

    return read

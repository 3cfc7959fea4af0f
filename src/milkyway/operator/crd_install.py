"""Install or upgrade Milkyway's CRDs on the management cluster at operator start.

The CRDs are generated from the models (:mod:`milkyway.model.crds`), so the operator
installs exactly the schema it validates with. Server-side apply makes this idempotent
and lets an upgraded operator take over the fields an older one set.
"""

from __future__ import annotations

import asyncio
import logging
from time import monotonic

from lightkube import AsyncClient
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from milkyway.model.crds import all_crds

log = logging.getLogger(__name__)

FIELD_MANAGER = "milkyway-operator"


async def install_crds(client: AsyncClient, *, within: float = 60.0) -> list[str]:
    """Apply every CRD and wait until each is Established; returns their names."""
    names: list[str] = []
    for crd in all_crds():
        name = crd["metadata"]["name"]
        await client.apply(
            CustomResourceDefinition.from_dict(crd), field_manager=FIELD_MANAGER, force=True
        )
        names.append(name)
    deadline = monotonic() + within
    for name in names:
        while not await _established(client, name):
            if monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {within:.0f}s")
            await asyncio.sleep(0.2)
    log.info("installed CRDs: %s", ", ".join(names))
    return names


async def _established(client: AsyncClient, name: str) -> bool:
    crd = await client.get(CustomResourceDefinition, name)
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)

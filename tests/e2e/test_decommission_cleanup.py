"""Deleting an Application removes everything Milkyway created for it: its objects, the
member-cluster namespaces it created (never one that existed before), its FlowRuns and
its flow locks in the management cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lightkube import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Namespace

from milkyway.cli.app_commands import APPLICATION
from milkyway.flows.kube_store import LOCK_KEY_ANNOTATION, LOCK_LABEL
from milkyway.operator.tasks.namespace import CREATED_BY

from .conftest import World

pytestmark = pytest.mark.slow


def _document(name: str, namespace: str) -> str:
    return f"""apiVersion: milkyway.ebay.com/v1
kind: Application
metadata:
  name: {name}
  namespace: {namespace}
spec:
  components:
    - name: zookeeper
      version: "3.8.4"
      regions:
        - name: NA
          zones:
            - {{name: phx, size: 1}}
            - {{name: slc, size: 1}}
        - name: EU
          zones:
            - {{name: ams, size: 1}}
"""


async def _namespace(world: World, cluster: str, name: str) -> dict[str, Any] | None:
    try:
        return dict((await world.member(cluster).get(Namespace, name)).to_dict())
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise


async def _locks(world: World, namespace: str, app: str) -> list[str]:
    found = []
    async for lock in world.client.list(
        ConfigMap, namespace=namespace, labels={LOCK_LABEL: "true"}
    ):
        key = (lock.metadata.annotations or {}).get(LOCK_KEY_ANNOTATION, "")
        if f"/{namespace}/{app}/" in key:
            found.append(f"{lock.metadata.name} {json.loads(lock.data['holders'])}")
    return found


async def _gone_or_terminating(world: World, cluster: str, name: str) -> bool:
    found = await _namespace(world, cluster, name)
    return found is None or bool(found["metadata"].get("deletionTimestamp"))


async def test_decommission_removes_what_milkyway_created_and_nothing_else(world: World) -> None:
    await world.member("na-phx").create(Namespace(metadata=ObjectMeta(name="existing")))
    await world.apply(_document("fresh", "created"))
    await world.apply(_document("guest", "existing"))
    await world.wait_ready("created", "fresh", within=120)
    await world.wait_ready("existing", "guest", within=120)
    made = await _namespace(world, "na-slc", "created")
    assert made is not None and made["metadata"]["annotations"][CREATED_BY]
    kept = await _namespace(world, "na-phx", "existing")
    assert kept is not None and CREATED_BY not in (kept["metadata"].get("annotations") or {})
    assert await _locks(world, "created", "fresh"), "the provision held no lock"

    for namespace, name in (("created", "fresh"), ("existing", "guest")):
        await world.client.delete(APPLICATION, name, namespace=namespace)

    async def deleted() -> bool:
        names = [
            (a.metadata.namespace, a.metadata.name)
            async for a in world.client.list(APPLICATION, namespace="*")
        ]
        return not names

    try:
        await world.wait_for(deleted, "both Applications to be deleted", within=120)
    except AssertionError as exc:
        left = [
            (
                a.metadata.name,
                [r.get("status") for r in await world.runs(a.metadata.namespace, a.metadata.name)],
            )
            async for a in world.client.list(APPLICATION, namespace="*")
        ]
        raise AssertionError(f"{exc}: {left}") from None
    for cluster in ("na-phx", "na-slc", "eu-ams"):
        assert await _gone_or_terminating(world, cluster, "created"), cluster
    for cluster in ("na-slc", "eu-ams"):
        assert await _gone_or_terminating(world, cluster, "existing"), cluster
    still = await _namespace(world, "na-phx", "existing")
    assert still is not None and not still["metadata"].get("deletionTimestamp")
    for namespace, name in (("created", "fresh"), ("existing", "guest")):
        assert await _locks(world, namespace, name) == []
        assert await world.runs(namespace, name) == []

"""The ApprovalPolicies and the ITSM webhook Secret come from watches: no API round trip
when a flow starts, and a change applies to every flow decided once its watch event
arrived; while a watch is not synced, reads go live."""

from __future__ import annotations

import asyncio
import base64
import copy
from typing import Any

import yaml
from lightkube import codecs
from lightkube.resources.core_v1 import Secret

from milkyway.flows.dsl import FlowError
from milkyway.kube.resources import APPROVAL_POLICY, FLOWRUN
from milkyway.operator import change_records
from milkyway.operator.watched_config import WatchedConfig

from .conftest import EXAMPLES, SYSTEM, ensure_namespace

POLICY = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "ApprovalPolicy",
    "metadata": {"name": "prod-provision", "namespace": SYSTEM},
    "spec": {
        "match": {"operations": ["provision"]},
        "approvals": {"users": ["bob"], "timeout": "2h"},
    },
}


def itsm_secret(url: str, key: str = "itsm-shared-secret-0123") -> Any:
    data = {"url": url, "key": key}
    return codecs.from_dict(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": change_records.SECRET_NAME, "namespace": SYSTEM},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
    )


async def test_reads_come_from_the_watches_and_follow_every_change(world: Any) -> None:
    config = WatchedConfig(world.mgmt)
    # Not synced yet: the reads go to the API server.
    assert await config.policies_of("etcd-demo") == []
    assert await config.itsm() is None
    assert config.live_reads == 2
    tasks = [asyncio.create_task(informer.run()) for informer in config.informers]
    try:
        for informer in config.informers:
            await world.eventually(informer.synced.is_set, within=10, what="synced")
        await world.mgmt.create(APPROVAL_POLICY.from_dict(POLICY), namespace=SYSTEM)
        await world.mgmt.create(itsm_secret("http://itsm.example/v1"))

        async def users() -> list[str]:
            found = await config.policies_of("etcd-demo")
            return [u for p in found for u in p.spec.approvals.users] if found else []

        async def url() -> str | None:
            found = await config.itsm()
            return found.url if found else None

        await world.eventually(lambda: users(), within=10, what="the new policy")
        assert await users() == ["bob"]
        await world.eventually(lambda: url(), within=10, what="the new webhook")

        changed = copy.deepcopy(POLICY)
        changed["spec"]["approvals"]["users"] = ["carol"]
        current = await world.mgmt.get(APPROVAL_POLICY, "prod-provision", namespace=SYSTEM)
        changed["metadata"]["resourceVersion"] = current.metadata.resourceVersion
        await world.mgmt.replace(APPROVAL_POLICY.from_dict(changed), namespace=SYSTEM)

        async def carol() -> bool:
            return await users() == ["carol"]

        await world.eventually(carol, within=10, what="the changed policy")

        await world.mgmt.replace(itsm_secret("https://itsm.example/v2"))

        async def second() -> bool:
            return await url() == "https://itsm.example/v2"

        await world.eventually(second, within=10, what="the changed webhook")
        await world.mgmt.replace(itsm_secret("ftp://nowhere"))

        async def refused() -> bool:
            try:
                await config.itsm()
            except ValueError as exc:
                return "is not an http(s) URL" in str(exc)
            return False

        await world.eventually(refused, within=10, what="the unusable webhook refused")
        await world.mgmt.delete(Secret, change_records.SECRET_NAME, namespace=SYSTEM)

        async def gone() -> bool:
            try:
                return await config.itsm() is None
            except ValueError:  # the deletion is not delivered yet
                return False

        await world.eventually(gone, within=10, what="no webhook once the Secret is gone")

        invalid = copy.deepcopy(POLICY)
        invalid["metadata"] = {"name": "broken", "namespace": "etcd-demo"}
        invalid["spec"]["approvals"] = {"users": ["bob"], "timeout": "soon"}
        await ensure_namespace(world.mgmt, "etcd-demo")
        await world.mgmt.create(APPROVAL_POLICY.from_dict(invalid), namespace="etcd-demo")

        async def invalid_refused() -> bool:
            try:
                await config.policies_of("etcd-demo")
            except FlowError as exc:
                return "ApprovalPolicy etcd-demo/broken is invalid at" in str(exc)
            return False

        await world.eventually(invalid_refused, within=10, what="the invalid policy refused")
        assert config.live_reads == 2
        # The member clusters' kubeconfig Secrets live there too: kept as names only.
        kept = [s for k, s in config.secrets.cache.items() if k[1] != change_records.SECRET_NAME]
        assert kept and all("data" not in s for s in kept)
    finally:
        for task in tasks:
            task.cancel()


async def test_a_policy_added_while_running_applies_to_the_next_flow_from_the_watch(
    world: Any,
) -> None:
    doc = yaml.safe_load((EXAMPLES / "etcd.yaml").read_text())
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        config = operator._session.start_config
        for informer in config.informers:
            await world.eventually(informer.synced.is_set, within=10, what="synced")
        reads = config.live_reads
        await world.mgmt.create(APPROVAL_POLICY.from_dict(POLICY), namespace=SYSTEM)

        def delivered() -> bool:
            return (SYSTEM, "prod-provision") in config.policies.cache

        await world.eventually(delivered, within=10, what="the policy delivered")
        # A webhook only the watch's copy has (no such Secret on the server): the run's
        # change record step shows the flow was decided from the copy, not a live read.
        where = (SYSTEM, change_records.SECRET_NAME)
        config.secrets.cache[where] = itsm_secret("http://127.0.0.1:9/itsm").to_dict()
        await world.apply_application(doc)

        async def provision() -> dict[str, Any] | None:
            async for run in world.mgmt.list(FLOWRUN, namespace="etcd-demo"):
                return run.to_dict()
            return None

        await world.eventually(provision, within=60, what="the provision run")
        run = await provision()
        assert run is not None
        gates = [g["name"] for g in run["spec"]["gates"]]
        assert gates == ["approval-prod-provision", change_records.OPEN_STEP]
        assert config.live_reads == reads

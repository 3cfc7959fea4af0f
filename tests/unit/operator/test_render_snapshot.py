"""Render snapshots: manifests leave a flow's parameters for a content-addressed ConfigMap
of the management cluster, and tasks read them back only if they match their hash."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Namespace

from milkyway.flows.tasks import FatalError, TaskContext
from milkyway.kube.clients import client_from_kubeconfig
from milkyway.operator import render_snapshot
from milkyway.operator.render_snapshot import PREFIX, externalize, manifests, store
from milkyway.operator.tasks.member import MemberParams
from milkyway.operator.tasks.zone import ApplyZoneParams
from milkyway.sim.clusters import SimulatedClusters

STATEFULSET = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "zk"}}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "zk-config"}}
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "zk-0"}}


@pytest.fixture(autouse=True)
def _no_cached_snapshots() -> None:
    """Each test reads the API server, not what an earlier test left in the cache."""
    render_snapshot._cache.clear()


def _params() -> dict[str, Any]:
    zone = {"zone": "phx", "cluster": "phx", "manifests": [CONFIGMAP, STATEFULSET]}
    return {
        "application": "orders",
        "zones": [zone, {**zone, "zone": "slc", "memberManifests": [POD]}],
        "members": [{"name": "zk-0", "manifests": []}, {"name": "zk-1", "manifests": [POD]}],
    }


def test_manifest_lists_become_references_to_one_snapshot() -> None:
    params, snapshot = externalize(_params(), "orders", "streaming")

    assert snapshot is not None and snapshot.name.startswith("orders-render-")
    zones = params["zones"]
    assert zones[0]["manifests"] == zones[1]["manifests"], "one entry per distinct list"
    assert zones[0]["manifests"].startswith(f"{PREFIX}streaming/{snapshot.name}#")
    assert params["members"][0]["manifests"] == [], "empty lists stay inline"
    assert params["members"][1]["manifests"] == zones[1]["memberManifests"]
    assert len(snapshot.data) == 2
    again, same = externalize(_params(), "orders", "streaming")
    assert again == params and same == snapshot, "content-addressed: the same render, the same"


def test_nothing_to_move_leaves_the_params_alone() -> None:
    params = {"zones": [{"zone": "phx", "manifests": []}]}
    assert externalize(params, "orders", "streaming") == (params, None)


def test_task_params_set_references_aside() -> None:
    reference = f"{PREFIX}streaming/orders-render-x#abc"
    parsed = ApplyZoneParams.model_validate(
        {"cluster": "phx", "manifests": reference, "memberManifests": [POD]}
    )
    assert parsed.manifests == [] and parsed.member_manifests == [POD]
    assert parsed.snapshot_refs == {"manifests": reference}
    inline = MemberParams.model_validate(
        {"name": "zk-0", "cluster": "phx", "selector": {}, "manifests": [POD]}
    )
    assert inline.manifests == [POD] and inline.snapshot_refs == {}


@pytest.fixture
async def management(tmp_path: Path) -> AsyncIterator[AsyncClient]:
    async with SimulatedClusters(["mgmt"], kubeconfig_path=tmp_path / "kubeconfig") as sim:
        client = client_from_kubeconfig(sim.kubeconfig_path, "mgmt")
        await client.create(Namespace(metadata=ObjectMeta(name="streaming")))
        try:
            yield client
        finally:
            await client.close()


def _ctx(management: Any) -> TaskContext:
    return TaskContext("run", "step", 1, {}, logging.getLogger("t"), management=management)


async def test_a_task_reads_back_exactly_what_was_stored(management: AsyncClient) -> None:
    params, snapshot = externalize(_params(), "orders", "streaming")
    assert snapshot is not None
    await store(management, snapshot, "orders", [])
    await store(management, snapshot, "orders", [])  # again: the same name, the same content

    parsed = ApplyZoneParams.model_validate({"cluster": "slc", **params["zones"][1]})
    resolved = await parsed.with_manifests(_ctx(management))

    assert resolved.manifests == [CONFIGMAP, STATEFULSET]
    assert resolved.member_manifests == [POD]
    stored = await management.get(ConfigMap, snapshot.name, namespace="streaming")
    assert stored.metadata.labels["milkyway.ebay.com/render-snapshot"] == "true"


async def test_a_changed_snapshot_is_refused(management: AsyncClient) -> None:
    params, snapshot = externalize(_params(), "orders", "streaming")
    assert snapshot is not None
    tampered = {key: text.replace("zk-config", "other") for key, text in snapshot.data.items()}
    await management.create(
        ConfigMap(metadata=ObjectMeta(name=snapshot.name, namespace="streaming"), data=tampered)
    )
    with pytest.raises(FatalError, match="does not match its hash"):
        await manifests(_ctx(management), params["zones"][0]["manifests"])


async def test_a_missing_snapshot_fails_the_step_naming_it(management: AsyncClient) -> None:
    params, snapshot = externalize(_params(), "orders", "streaming")
    assert snapshot is not None
    reference = params["members"][1]["manifests"].replace("orders-render-", "gone-render-")
    with pytest.raises(FatalError, match=r"render snapshot streaming/gone-render-.* is gone"):
        await manifests(_ctx(management), reference)


async def test_a_reference_needs_the_management_cluster() -> None:
    params, _ = externalize(_params(), "orders", "streaming")
    with pytest.raises(FatalError, match="no client of the management cluster"):
        await manifests(_ctx(None), params["zones"][0]["manifests"])
    with pytest.raises(FatalError, match="neither a list of objects nor a reference"):
        await manifests(_ctx(None), "zones/phx")


def test_a_flows_own_manifests_param_stays_inline() -> None:
    """Generic flows (``apply-and-wait``) take ``manifests`` themselves and validate it as
    a list: only the zones' and members' lists of the lifecycle flows move."""
    params = {"cluster": "phx", "manifests": [CONFIGMAP], "zones": [{"manifests": [POD]}]}
    moved, snapshot = externalize(params, "orders", "streaming")
    assert snapshot is not None and len(snapshot.data) == 1
    assert moved["manifests"] == [CONFIGMAP]
    assert moved["zones"][0]["manifests"].startswith(PREFIX)

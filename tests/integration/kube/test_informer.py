"""The informer against a simulated API server: list, watch, resume and relist after 410."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap
from tests.polling import eventually

from milkyway.kube.clients import client_from_kubeconfig
from milkyway.kube.informer import Informer
from milkyway.sim.clusters import SimulatedClusters


@pytest.fixture
async def client(sim: SimulatedClusters) -> AsyncIterator[AsyncClient]:
    c = client_from_kubeconfig(sim.kubeconfig_path, "c1")
    yield c
    await c.close()


def config_map(name: str, labels: dict[str, str] | None = None, value: str = "1") -> ConfigMap:
    return ConfigMap(
        metadata=ObjectMeta(name=name, namespace="default", labels=labels or {}),
        data={"v": value},
    )


@contextlib.asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 10)
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_lists_then_follows_changes_of_selected_objects(client: AsyncClient) -> None:
    await client.create(config_map("before", {"owned": "yes"}))
    await client.create(config_map("other", {"owned": "no"}))
    events: list[tuple[str, str]] = []
    informer = Informer(
        client,
        ConfigMap,
        namespace="default",
        labels={"owned": "yes"},
        on_change=lambda kind, obj: events.append((kind, obj.metadata.name)),
    )
    async with running(informer):
        assert set(informer.cache) == {("default", "before")}
        await client.create(config_map("after", {"owned": "yes"}))
        await client.patch(ConfigMap, "before", {"data": {"v": "2"}}, namespace="default")
        await client.delete(ConfigMap, "before", namespace="default")
        await client.create(config_map("ignored", {"owned": "no"}))
        await eventually(lambda: ("DELETED", "before") in events)
    assert events == [
        ("ADDED", "before"),
        ("ADDED", "after"),
        ("MODIFIED", "before"),
        ("DELETED", "before"),
    ]
    assert set(informer.cache) == {("default", "after")}


async def test_relist_after_gone_reports_only_the_differences(client: AsyncClient) -> None:
    await client.create(config_map("kept"))
    await client.create(config_map("changed"))
    await client.create(config_map("removed"))
    events: list[tuple[str, str]] = []
    informer = Informer(
        client,
        ConfigMap,
        namespace="default",
        on_change=lambda kind, obj: events.append((kind, obj.metadata.name)),
        retry_delay=0.05,
    )
    await informer._relist()
    events.clear()
    await client.patch(ConfigMap, "changed", {"data": {"v": "2"}}, namespace="default")
    await client.delete(ConfigMap, "removed", namespace="default")
    await client.create(config_map("new"))
    # A second list stands in for the relist after 410: only what changed is reported.
    await informer._relist()
    assert sorted(events) == [("ADDED", "new"), ("DELETED", "removed"), ("MODIFIED", "changed")]
    assert set(informer.cache) == {("default", n) for n in ("kept", "changed", "new")}


async def test_expired_resource_version_leads_to_a_relist(
    sim: SimulatedClusters, client: AsyncClient
) -> None:
    await client.create(config_map("a"))
    events: list[tuple[str, str]] = []
    informer = Informer(
        client,
        ConfigMap,
        namespace="default",
        on_change=lambda kind, obj: events.append((kind, obj.metadata.name)),
        retry_delay=0.05,
    )
    await informer._relist()
    for i in range(3):
        await client.create(config_map(f"b{i}"))
    sim["c1"].api.store.reset_history()  # compaction: the informer's version is now too old
    # _watch returns (instead of raising or hanging) only on 410 Gone.
    await asyncio.wait_for(informer._watch(), 10)
    assert not any(name.startswith("b") for _, name in events)
    async with running(informer):
        await client.create(config_map("c"))
        await eventually(lambda: ("ADDED", "c") in events)
    assert [e for e in events if e[1] == "a"] == [("ADDED", "a")]
    assert sorted(e for e in events if e[1].startswith("b")) == [
        ("ADDED", "b0"),
        ("ADDED", "b1"),
        ("ADDED", "b2"),
    ]


async def test_resumes_after_the_server_ends_the_watch(client: AsyncClient) -> None:
    events: list[tuple[str, str]] = []
    informer = Informer(
        client,
        ConfigMap,
        namespace="default",
        on_change=lambda kind, obj: events.append((kind, obj.metadata.name)),
        server_timeout=1,
    )
    async with running(informer):
        await asyncio.sleep(1.5)
        await client.create(config_map("late"))
        await eventually(lambda: ("ADDED", "late") in events)
    assert events.count(("ADDED", "late")) == 1


async def test_cluster_scoped_resources_are_listed_without_namespace(client: AsyncClient) -> None:
    from lightkube.resources.core_v1 import Namespace

    events: list[tuple[str, str]] = []
    informer = Informer(
        client, Namespace, on_change=lambda kind, obj: events.append((kind, obj.metadata.name))
    )
    async with running(informer):
        await client.create(Namespace(metadata=ObjectMeta(name="fresh")))
        await eventually(lambda: ("ADDED", "fresh") in events)
    assert ("", "default") in informer.cache


async def test_transform_decides_what_is_cached_and_reported(client: AsyncClient) -> None:
    from milkyway.kube.resources import plain

    await client.create(config_map("before"))
    events: list[tuple[str, Any]] = []
    informer = Informer(
        client,
        ConfigMap,
        namespace="default",
        on_change=lambda kind, obj: events.append((kind, obj)),
        transform=plain,
    )
    async with running(informer):
        await client.create(config_map("after"))
        await eventually(lambda: len(events) == 2)
        await client.patch(ConfigMap, "after", {"data": {"v": "2"}}, namespace="default")
        await eventually(lambda: len(events) == 3)
    assert [kind for kind, _ in events] == ["ADDED", "ADDED", "MODIFIED"]
    for _, obj in events:
        assert isinstance(obj, dict) and obj["kind"] == "ConfigMap"
        assert "managedFields" not in obj["metadata"]
    assert informer.cache[("default", "after")] is events[-1][1]
    assert informer.cache[("default", "after")]["data"] == {"v": "2"}


async def test_a_failing_watch_is_not_synced_until_a_listing_is_mirrored_again(
    sim: SimulatedClusters, client: AsyncClient
) -> None:
    """While the cluster does not answer, the cache may be missing changes: ``synced`` is
    cleared, and set again (with ``on_synced``) only once a new listing is mirrored."""
    await client.create(config_map("before"))
    recovered: list[bool] = []
    informer = Informer(
        client,
        ConfigMap,
        namespace="default",
        on_change=lambda kind, obj: None,
        retry_delay=0.1,
        max_retry_delay=0.2,
        on_synced=lambda: recovered.append(informer.synced.is_set()),
    )
    server = sim["c1"].server
    async with running(informer):
        await server.pause_listening()
        try:
            await eventually(lambda: not informer.synced.is_set())
            sim["c1"].api.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "during", "namespace": "default"},
                    "data": {},
                }
            )
            await asyncio.sleep(0.5)
            assert not informer.synced.is_set() and not recovered
        finally:
            await server.resume_listening()
        await eventually(lambda: informer.synced.is_set())
        assert recovered == [True]
        assert ("default", "during") in informer.cache

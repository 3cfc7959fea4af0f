"""Watch correctness under random writes: watchers that reconnect (and relist after 410
Expired) always mirror the store exactly — no missed and no duplicated events."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.apiserver.store import Watcher


class Mirror:
    """A client-side cache kept by list + watch, the way an informer keeps one."""

    def __init__(self, api: ClusterAPI, selector: str) -> None:
        self.api = api
        self.selector = selector
        self.state: dict[str, dict[str, Any]] = {}
        self.rv = 0
        self.relists = 0
        self.watcher: Watcher = self._relist()

    def _relist(self) -> Watcher:
        listed = self.api.list("configmaps", namespace="default", label_selector=self.selector)
        self.state = {o["metadata"]["name"]: o for o in listed["items"]}
        self.rv = int(listed["metadata"]["resourceVersion"])
        self.relists += 1
        return self.api.watch(
            "configmaps",
            namespace="default",
            label_selector=self.selector,
            resource_version=str(self.rv),
        )

    def consume(self) -> None:
        for event in self.watcher.drain():
            obj = event.object
            name = obj["metadata"]["name"]
            revision = int(obj["metadata"]["resourceVersion"])
            assert revision > self.rv, f"duplicate or out-of-order event {event.type} {name}"
            self.rv = revision
            if event.type == "ADDED":
                assert name not in self.state, f"ADDED for {name}, which the mirror has"
                self.state[name] = obj
            elif event.type == "MODIFIED":
                assert name in self.state, f"MODIFIED for {name}, which the mirror lacks"
                self.state[name] = obj
            else:
                assert name in self.state, f"DELETED for {name}, which the mirror lacks"
                del self.state[name]
        if self.watcher.closed:
            self.watcher = self._relist()

    def reconnect(self) -> None:
        self.consume()
        self.watcher.close()
        try:
            self.watcher = self.api.watch(
                "configmaps",
                namespace="default",
                label_selector=self.selector,
                resource_version=str(self.rv),
            )
        except ApiError as error:
            assert error.code == 410 and error.reason == "Expired"
            self.watcher = self._relist()


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["create", "update", "delete", "reconnect"]),
        st.integers(0, 5),
        st.sampled_from(["red", "blue"]),
        st.integers(0, 2),
    ),
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(OPERATIONS)
def test_watchers_with_reconnects_mirror_the_store(ops: list[tuple[str, int, str, int]]) -> None:
    api = ClusterAPI(history=6)
    mirrors = [Mirror(api, ""), Mirror(api, "color=red"), Mirror(api, "color!=red")]
    for op, n, color, which in ops:
        name = f"cm-{n}"
        existing = api.store.get(("", "configmaps"), "default", name)
        if op == "create" and existing is None:
            api.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name, "labels": {"color": color}},
                    "data": {"n": "0"},
                }
            )
        elif op == "update" and existing is not None:
            obj = api.get("configmaps", name)
            obj["metadata"]["labels"]["color"] = color
            obj["data"]["n"] = str(int(obj["data"]["n"]) + 1)
            api.update(obj)
        elif op == "delete" and existing is not None:
            api.delete("configmaps", name)
        elif op == "reconnect":
            mirrors[which].reconnect()
        if n % 2:
            mirrors[which].consume()
    for mirror in mirrors:
        mirror.consume()
        expected = api.list("configmaps", namespace="default", label_selector=mirror.selector)
        assert mirror.state == {o["metadata"]["name"]: o for o in expected["items"]}


def test_too_old_resource_version_is_410_expired() -> None:
    api = ClusterAPI(history=2)
    first = api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    for i in range(4):
        api.patch("configmaps", "a", {"data": {"i": str(i)}})
    with pytest.raises(ApiError) as expired:
        api.watch("configmaps", resource_version=first["metadata"]["resourceVersion"])
    assert expired.value.code == 410
    assert "too old resource version" in expired.value.message


def test_selector_transitions_become_added_and_deleted() -> None:
    api = ClusterAPI()
    api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "labels": {"tier": "web"}},
        }
    )
    watcher = api.watch("configmaps", label_selector="tier=db", resource_version=str(api.revision))
    api.patch("configmaps", "a", {"metadata": {"labels": {"tier": "db"}}})
    api.patch("configmaps", "a", {"metadata": {"labels": {"tier": "web"}}})
    assert [e.type for e in watcher.drain()] == ["ADDED", "DELETED"]


def test_watch_without_version_starts_with_current_objects() -> None:
    api = ClusterAPI()
    for name in ("a", "b"):
        api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
    watcher = api.watch("configmaps", namespace="default")
    api.delete("configmaps", "a")
    assert [(e.type, e.object["metadata"]["name"]) for e in watcher.drain()] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]


async def test_async_iteration_and_subscribe() -> None:
    api = ClusterAPI()
    seen: list[str] = []
    unsubscribe = api.subscribe("configmaps", lambda e: seen.append(e.type))
    watcher = api.watch("configmaps", resource_version=str(api.revision))
    api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    unsubscribe()
    api.delete("configmaps", "a")
    types = []
    async for event in watcher:
        types.append(event.type)
        if len(types) == 2:
            break
    assert types == ["ADDED", "DELETED"]
    assert seen == ["ADDED"]


def test_failing_subscriber_does_not_fail_the_write() -> None:
    api = ClusterAPI()

    def broken(_event: object) -> None:
        raise RuntimeError("subscriber bug")

    api.subscribe("configmaps", broken)
    made = api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    assert api.get("configmaps", "a")["metadata"]["uid"] == made["metadata"]["uid"]


def test_watch_from_a_list_of_a_quiet_resource_is_not_expired() -> None:
    api = ClusterAPI(history=2)
    listed = api.list("secrets")
    for i in range(5):
        api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}})
    watcher = api.watch("secrets", resource_version=listed["metadata"]["resourceVersion"])
    api.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    assert [e.type for e in watcher.drain()] == ["ADDED"]

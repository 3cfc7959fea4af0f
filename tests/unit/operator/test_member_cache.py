"""A member cluster's cache wakes an Application up only for a change a reader of the
cache could see: not for a status heartbeat that changes nothing else."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.kube.member_cache import OWNED_KINDS, MemberCache


def pod(ready: str = "True", heartbeat: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "zk-0",
            "namespace": "milkyway",
            "resourceVersion": "1",
            "labels": {
                "app.kubernetes.io/managed-by": "milkyway",
                "milkyway.ebay.com/application": "stream1",
            },
        },
        "spec": {"nodeName": "node-a"},
        "status": {
            "phase": "Running",
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "lastProbeTime": heartbeat,
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        },
    }


def cache() -> tuple[MemberCache, list[tuple[str, tuple[str, str]]]]:
    calls: list[tuple[str, tuple[str, str]]] = []
    member = MemberCache("na-phx-1", client=None, on_change=lambda c, a: calls.append((c, a)))  # type: ignore[arg-type]
    return member, calls


def test_a_new_object_wakes_its_application_up() -> None:
    member, calls = cache()
    member._owned_changed("ADDED", pod())
    assert calls == [("na-phx-1", ("milkyway", "stream1"))]
    assert member.objects("milkyway", "stream1")[0]["metadata"]["name"] == "zk-0"


def test_a_heartbeat_only_change_is_cached_but_does_not_wake_it_up() -> None:
    member, calls = cache()
    member._owned_changed("ADDED", pod())
    later = pod(heartbeat="2026-01-01T00:00:10Z")
    later["metadata"]["resourceVersion"] = "2"
    member._owned_changed("MODIFIED", later)
    assert len(calls) == 1
    cached = member.objects("milkyway", "stream1")[0]
    assert cached["metadata"]["resourceVersion"] == "2"


def test_a_readiness_change_wakes_it_up() -> None:
    member, calls = cache()
    member._owned_changed("ADDED", pod())
    member._owned_changed("MODIFIED", pod(ready="False"))
    assert len(calls) == 2


def test_deletion_and_a_deletion_timestamp_wake_it_up() -> None:
    member, calls = cache()
    member._owned_changed("ADDED", pod())
    terminating = copy.deepcopy(pod())
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    member._owned_changed("MODIFIED", terminating)
    member._owned_changed("DELETED", terminating)
    assert len(calls) == 3
    assert member.objects("milkyway", "stream1") == []


def owned(kind: str, name: str, app: str, ref: str | None) -> dict[str, Any]:
    field = "nodeName" if kind == "Pod" else "volumeName"
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "milkyway",
            "labels": {"milkyway.ebay.com/application": app},
        },
        "spec": {field: ref} if ref else {},
    }


def node(name: str, ready: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def volume(name: str, phase: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "status": {"phase": phase},
    }


def test_a_node_or_volume_change_wakes_only_the_applications_using_it() -> None:
    member, calls = cache()
    member._owned_changed("ADDED", owned("Pod", "a-0", "a", "node-1"))
    member._owned_changed("ADDED", owned("Pod", "b-0", "b", "node-2"))
    member._owned_changed("ADDED", owned("PersistentVolumeClaim", "data-b-0", "b", "pv-1"))
    member._node_changed("ADDED", node("node-1", "True"))
    member._node_changed("ADDED", node("node-2", "True"))
    member._volume_changed("ADDED", volume("pv-1", "Bound"))
    calls.clear()
    member._node_changed("MODIFIED", node("node-1", "False"))
    member._volume_changed("MODIFIED", volume("pv-1", "Failed"))
    member._node_changed("MODIFIED", node("node-2", "True"))
    assert calls == [("na-phx-1", ("milkyway", "a")), ("na-phx-1", ("milkyway", "b"))]


def test_a_pod_that_is_gone_or_moved_no_longer_uses_its_node() -> None:
    member, calls = cache()
    member._owned_changed("ADDED", owned("Pod", "a-0", "a", "node-1"))
    member._owned_changed("ADDED", owned("Pod", "a-1", "a", "node-1"))
    member._owned_changed("DELETED", owned("Pod", "a-0", "a", "node-1"))
    member._node_changed("ADDED", node("node-1", "True"))
    assert calls[-1] == ("na-phx-1", ("milkyway", "a")), "a-1 still runs there"
    member._owned_changed("MODIFIED", owned("Pod", "a-1", "a", "node-3"))
    calls.clear()
    member._node_changed("MODIFIED", node("node-1", "False"))
    assert calls == []
    assert member._users == {("node", "node-3"): {("milkyway", "a"): 1}}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ADDED", "MODIFIED", "DELETED"]),
            st.sampled_from(["Pod", "PersistentVolumeClaim"]),
            st.integers(0, 3),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from([None, "x", "y"]),
        ),
        max_size=40,
    )
)
def test_the_users_index_matches_a_scan_of_the_cache(
    ops: list[tuple[str, str, int, str, str | None]],
) -> None:
    member, _ = cache()
    for event, kind, index, app, ref in ops:
        member._owned_changed(event, owned(kind, f"{kind}-{index}", app, ref))
    for used in [("node", "x"), ("node", "y"), ("volume", "x"), ("volume", "y")]:
        field, kind = (
            ("nodeName", "Pod") if used[0] == "node" else ("volumeName", "PersistentVolumeClaim")
        )
        scanned = {
            app
            for app in member.applications()
            for o in member.objects(*app)
            if o["kind"] == kind and o["spec"].get(field) == used[1]
        }
        assert set(member._users.get(used, {})) == scanned


def test_owned_kinds_are_watched_only_in_the_managed_namespaces() -> None:
    """A Cluster registered with namespaces: one watch per owned kind and namespace (the
    member's roles grant nothing namespaced elsewhere); Nodes and volumes cluster-wide."""
    member = MemberCache(
        "na-phx-1",
        client=None,  # type: ignore[arg-type]
        on_change=lambda c, a: None,
        namespaces=["team-a", "team-b", "team-a"],
    )
    watched = {(i._resource.__name__, i._namespace) for i in member._informers}
    owned = {k.__name__ for k in OWNED_KINDS}
    assert watched == {
        *((kind, ns) for kind in owned for ns in ("team-a", "team-b")),
        ("Node", None),
        ("PersistentVolume", None),
    }
    everywhere = MemberCache("na-phx-1", client=None, on_change=lambda c, a: None)  # type: ignore[arg-type]
    assert {i._namespace for i in everywhere._informers} == {None}


def test_node_counts_are_known_once_the_nodes_are_listed() -> None:
    member, _ = cache()
    assert member.node_counts() is None
    member._node_changed("ADDED", node("node-1", "True"))
    member._node_changed("ADDED", node("node-2", "False"))
    for informer in member._informers:
        informer.synced.set()
    assert member.node_counts() == (1, 2)
    member._nodes_informer.synced.clear()  # its watch failed: the counts may be stale
    assert member.node_counts() is None

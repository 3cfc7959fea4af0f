"""A member cluster's cache wakes an Application up only for a change a reader of the
cache could see: not for a status heartbeat that changes nothing else."""

from __future__ import annotations

import copy
from typing import Any

from milkyway.kube.member_cache import MemberCache


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

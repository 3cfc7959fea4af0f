"""A health check reads each zone's pods from the operator's member caches, and a zone
it cannot vouch for (cluster unknown, unreachable, or not listed again since it came
back) is unreadable rather than read as empty."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from milkyway.kube.member_cache import MemberCache
from milkyway.operator.health.checks import zone_findings
from milkyway.operator.health.reads import cached_zone_reader
from milkyway.operator.registry import MemberCluster

from .test_health_checks import target
from .test_member_cache import pod


def _pod(name: str, app: str, component: str, ready: str = "True") -> dict[str, Any]:
    obj = copy.deepcopy(pod(ready=ready))
    obj["metadata"]["name"] = name
    obj["metadata"]["namespace"] = "ns"
    obj["metadata"]["labels"].update({"milkyway.ebay.com/application": app, "app": component})
    return obj


def _member(reachable: bool = True, listed: bool = True) -> MemberCluster:
    cache = MemberCache("c-phx", client=None, on_change=lambda c, a: None)  # type: ignore[arg-type]
    for informer in cache._informers:
        if listed:
            informer.synced.set()
    for obj in (
        _pod("zk-phx-0", "a", "zk", ready="False"),
        _pod("kafka-phx-0", "a", "kafka"),
        _pod("zk-phx-0", "b", "zk"),
    ):
        cache._owned_changed("ADDED", obj)
    return MemberCluster("c-phx", {}, cache=cache, reachable=reachable)


def _target() -> Any:
    zone = target("zk", "phx", 1)
    return type(zone)(
        **{**zone.__dict__, "selector": {**zone.selector, "milkyway.ebay.com/application": "a"}}
    )


def test_the_pods_of_the_zone_are_read_from_the_cache() -> None:
    read = cached_zone_reader({"c-phx": _member()}.get)(_target())
    assert read.error == ""
    assert [(p["metadata"]["name"], p["metadata"]["labels"]["app"]) for p in read.pods] == [
        ("zk-phx-0", "zk")
    ]
    findings, ready = zone_findings(read, ("members",))
    assert ready == 0 and findings[0]["check"] == "member-ready"


def test_a_zone_the_cache_cannot_vouch_for_is_unreadable() -> None:
    zone = _target()
    assert "not registered" in cached_zone_reader({}.get)(zone).error
    unreachable = cached_zone_reader({"c-phx": _member(reachable=False)}.get)(zone)
    assert unreachable.error == "cluster c-phx unreachable" and unreachable.pods == []
    relisting = cached_zone_reader({"c-phx": _member(listed=False)}.get)(zone)
    assert "not listed yet" in relisting.error
    nowhere = replace(zone, cluster="")
    assert "has no cluster" in cached_zone_reader({}.get)(nowhere).error
    findings, _ = zone_findings(unreachable, ("members",))
    assert [f["check"] for f in findings] == ["zone-readable"]

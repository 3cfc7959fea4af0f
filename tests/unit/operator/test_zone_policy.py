"""The ``zone`` disruption policy: which types may declare it, when a whole zone goes at
once, and what the planner asks the flows and the live gate to hold."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from milkyway.components import builtin_component_types
from milkyway.components.registry import component_type_from_resource
from milkyway.model.component_type import DisruptionPolicy, ZoneSafety
from milkyway.model.errors import ValidationFailed
from milkyway.model.load import application_from_data
from milkyway.model.resolve import resolve
from milkyway.model.zone_policy import whole_zone_safe, zone_budget
from milkyway.operator.planner import plan
from milkyway.render.zone import render_zone

_spec = importlib.util.spec_from_file_location(
    "planner_world", Path(__file__).with_name("planner_world.py")
)
assert _spec is not None and _spec.loader is not None
world = importlib.util.module_from_spec(_spec)
sys.modules["planner_world"] = world
_spec.loader.exec_module(world)
Member = world.Member

TYPES = builtin_component_types()
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
KAFKA = TYPES["kafka"].spec.disruption


def _type(disruption: dict[str, Any], **params: int) -> dict[str, Any]:
    declared = [
        {"name": name, "type": "integer", "default": value} for name, value in params.items()
    ]
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "ComponentType",
        "metadata": {"name": "logstore"},
        "spec": {
            "versions": [{"version": "1.0", "image": "logstore:1.0"}],
            "params": declared,
            "profiles": {"default": {}},
            "container": {"start": "exec logstore"},
            "disruption": disruption,
        },
    }


SAFETY = {"replicationFactor": "rf", "minInSync": "isr"}


def test_a_type_declaring_the_zone_policy_with_safe_defaults_loads() -> None:
    loaded = component_type_from_resource(
        _type({"kind": "zone", "zoneSafety": SAFETY}, rf=3, isr=2)
    )
    assert loaded.spec.disruption.zone_safety == ZoneSafety(
        replication_factor="rf", min_in_sync="isr"
    )


@pytest.mark.parametrize(
    ("disruption", "params", "message"),
    [
        (
            {"kind": "zone"},
            {"rf": 3, "isr": 2},
            "disruption.kind = 'zone' needs disruption.zoneSafety",
        ),
        (
            {"kind": "zone", "zoneSafety": {"replicationFactor": "copies", "minInSync": "isr"}},
            {"rf": 3, "isr": 2},
            "disruption.zoneSafety.replicationFactor = 'copies' is not an integer param",
        ),
        (
            {"kind": "zone", "zoneSafety": SAFETY},
            {"rf": 3, "isr": 3},
            "profile 'default' sets isr = 3, not below rf = 3",
        ),
    ],
)
def test_the_zone_policy_is_refused_when_the_type_does_not_make_it_safe(
    disruption: dict[str, Any], params: dict[str, int], message: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        component_type_from_resource(_type(disruption, **params))
    messages = [e.message for e in caught.value.errors]
    assert any(message in m for m in messages), messages
    assert any("rackAware" in m for m in messages), "the fix names the fallback"


def test_a_profile_raising_min_in_sync_is_refused_by_name() -> None:
    resource = _type({"kind": "zone", "zoneSafety": SAFETY}, rf=3, isr=2)
    resource["spec"]["profiles"]["strict"] = {"params": {"isr": 3}}
    with pytest.raises(ValidationFailed) as caught:
        component_type_from_resource(resource)
    assert any("profile 'strict' sets isr = 3" in e.message for e in caught.value.errors)


@pytest.mark.parametrize(
    ("sizes", "rf", "isr", "safe"),
    [
        ([3, 3, 3], 3, 2, True),  # one copy per zone: two left, two needed
        ([10, 10, 10], 3, 2, True),
        ([3], 3, 2, False),  # one zone: the whole component would be down
        ([2, 2], 3, 2, False),  # two copies share a zone: one left, two needed
        ([2, 2], 4, 2, True),  # two copies per zone: two left
        ([3, 3, 3], 3, 3, False),  # every copy needed for a write
        ([1, 1, 1], 5, 2, True),  # replication factor capped at the 3 members
        ([3, 3, 0], 3, 2, False),  # an empty zone holds nothing: two zones of data
    ],
)
def test_a_whole_zone_goes_only_when_every_partition_stays_writable(
    sizes: list[int], rf: int, isr: int, safe: bool
) -> None:
    zones = [(size, {"replicationFactor": rf, "minInsyncReplicas": isr}) for size in sizes]
    assert whole_zone_safe(KAFKA, zones) is safe
    assert zone_budget(KAFKA, zones) == (max(sizes) if safe else 1)


def test_other_kinds_never_take_a_whole_zone() -> None:
    zones = [(3, {"replicationFactor": 3, "minInsyncReplicas": 2})] * 3
    rack = DisruptionPolicy(kind="rackAware", zone_safety=KAFKA.zone_safety)
    assert not whole_zone_safe(rack, zones)


def _app(kafka: dict[str, int], **params: Any) -> Any:
    def comp(name: str, version: str, sizes: dict[str, int], **extra: Any) -> dict[str, Any]:
        zones = [{"name": z, "size": n} for z, n in sizes.items()]
        return {"name": name, "version": version, "regions": [{"name": "NA", "zones": zones}]}

    kafka_component = comp("kafka1", "1.1.0", kafka)
    if params:
        kafka_component["params"] = params
    return application_from_data(
        {
            "apiVersion": "milkyway.ebay.com/v1",
            "kind": "Application",
            "metadata": {"name": "app", "namespace": "ns"},
            "spec": {"components": [comp("zookeeper1", "3.4.7", {"a": 1}), kafka_component]},
        }
    )


def _upgrade(kafka: dict[str, int], down: int = 0, **params: Any) -> Any:
    """The plan for a Kafka whose members all run an old version (``down`` of the first
    zone's members not Ready)."""
    app = _app(kafka, **params)
    resolved = resolve(app, TYPES)
    desired = {
        (n, z.name): render_zone(resolved, n, z.name)
        for n, c in resolved.components.items()
        for z in c.zones
    }
    observed = {
        ("zookeeper1", "a"): world.live_zone(
            "zookeeper1", "a", desired[("zookeeper1", "a")], [Member()]
        )
    }
    for index, (zone, size) in enumerate(kafka.items()):
        members = [Member("stale-version")] * size
        if index == 0 and down:
            members = [Member("down")] * down + members[down:]
        observed[("kafka1", zone)] = world.live_zone(
            "kafka1", zone, desired[("kafka1", zone)], members
        )
    return plan(app, resolved, desired, observed, [], now=NOW, clusters={})


def test_kafka_over_three_zones_rolls_a_whole_zone_per_wave() -> None:
    (request,) = _upgrade({"a": 3, "b": 3, "c": 3}).start
    assert request.operation == "rolling-upgrade"
    params = request.params
    assert [m["batch"] for m in params["members"]] == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert (params["parallelism"], params["maxDown"], params["alreadyDown"]) == (3, 3, 0)
    assert params["gate"]["maxUnavailable"] == 3 and params["gate"]["oneZone"] is True


def test_kafka_over_two_zones_keeps_one_broker_at_a_time() -> None:
    (request,) = _upgrade({"a": 2, "b": 2}).start
    assert (request.params["parallelism"], request.params["maxDown"]) == (1, 1)
    assert request.params["gate"]["oneZone"] is False


def test_a_raised_min_in_sync_falls_back_to_one_broker_at_a_time() -> None:
    (request,) = _upgrade({"a": 3, "b": 3, "c": 3}, minInsyncReplicas=3).start
    assert (request.params["parallelism"], request.params["maxDown"]) == (1, 1)


def test_a_member_already_down_stops_whole_zone_rolls_until_it_is_back() -> None:
    result = _upgrade({"a": 3, "b": 3, "c": 3}, down=1)
    for request in result.start:
        assert request.params["gate"]["oneZone"] is False
        assert request.params["maxDown"] <= 1 + request.params["alreadyDown"]

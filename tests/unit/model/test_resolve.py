"""Resolution: types from names, bindings from order, dependency order, effective settings."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from milkyway.components import builtin_component_types
from milkyway.model import ResolvedApplication, load_application, resolve
from milkyway.model.resolve import infer_type

from .conftest import stream1_data, stream1_text

TYPES = builtin_component_types()


def _resolve(data: dict[str, Any]) -> ResolvedApplication:
    return resolve(load_application(yaml.safe_dump(data)), TYPES)


def test_stream1_types_and_bindings_are_inferred() -> None:
    resolved = resolve(load_application(stream1_text()), TYPES)
    types = {name: c.type.name for name, c in resolved.components.items()}
    assert types == {
        "zookeeper1": "zookeeper",
        "kafka1": "kafka",
        "zookeeper2": "zookeeper",
        "flink-jobmanager": "flink-jobmanager",
        "flink-taskmanager": "flink-taskmanager",
    }
    bindings = {name: dict(c.bindings) for name, c in resolved.components.items()}
    assert bindings["kafka1"] == {"zookeeper": "zookeeper1"}
    assert bindings["flink-jobmanager"] == {"zookeeper": "zookeeper2"}
    assert bindings["flink-taskmanager"] == {"jobmanager": "flink-jobmanager"}
    assert resolved.order == (
        "zookeeper1",
        "kafka1",
        "zookeeper2",
        "flink-jobmanager",
        "flink-taskmanager",
    )


def test_explicit_uses_overrides_inference_and_reorders() -> None:
    data = stream1_data()
    data["spec"]["components"][1]["uses"] = {"zookeeper": "zookeeper2"}
    resolved = _resolve(data)
    assert resolved.components["kafka1"].bindings == {"zookeeper": "zookeeper2"}
    order = resolved.order
    assert order.index("zookeeper2") < order.index("kafka1")
    assert order[0] == "zookeeper1"


def test_dependants_listed_first_are_provisioned_after_their_dependencies() -> None:
    data = stream1_data()
    components = data["spec"]["components"]
    tm = components.pop(4)
    tm["uses"] = {"jobmanager": "flink-jobmanager"}
    components.insert(0, tm)
    order = _resolve(data).order
    assert order.index("flink-jobmanager") < order.index("flink-taskmanager")
    assert order.index("zookeeper2") < order.index("flink-jobmanager")


def test_optional_dependency_may_stay_unbound() -> None:
    data = stream1_data()
    data["spec"]["components"] = [data["spec"]["components"][3]]
    assert _resolve(data).components["flink-jobmanager"].bindings == {}


def test_explicit_type_wins_over_the_name() -> None:
    data = stream1_data()
    data["spec"]["components"][0]["name"] = "coordination"
    data["spec"]["components"][0]["type"] = "zookeeper"
    resolved = _resolve(data)
    assert resolved.components["coordination"].type.name == "zookeeper"
    assert resolved.components["kafka1"].bindings == {"zookeeper": "coordination"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("zookeeper", "zookeeper"),
        ("zookeeper1", "zookeeper"),
        ("zookeeper-east", "zookeeper"),
        ("kafka12", "kafka"),
        ("flink-jobmanager", "flink-jobmanager"),
        ("flink-taskmanager2", "flink-taskmanager"),
        ("zookeeperx", None),
        ("flink", None),
        ("mykafka", None),
    ],
)
def test_infer_type(name: str, expected: str | None) -> None:
    assert infer_type(name, TYPES) == expected


def test_settings_merge_type_profile_component_zone() -> None:
    data = stream1_data()
    kafka = data["spec"]["components"][1]
    kafka["config"] = "production"
    kafka["params"] = {"logRetentionHours": 24}
    kafka["resources"] = {"cpu": 3}
    kafka["image"] = "example/kafka:custom"
    zone = kafka["regions"][0]["zones"][0]
    zone["params"] = {"numIoThreads": 32}
    zone["storage"] = {"storageClass": "fast"}
    resolved = _resolve(data).components["kafka1"].zone("phx")
    assert resolved.params["heapMb"] == 6144
    assert resolved.params["logRetentionHours"] == 24
    assert resolved.params["numIoThreads"] == 32
    assert resolved.params["numPartitions"] == 3
    assert resolved.resources.cpu == "3"
    assert resolved.resources.memory == "12Gi"
    assert resolved.storage.size == "500Gi"
    assert resolved.storage.storage_class == "fast"
    assert resolved.image == "example/kafka:custom"


def test_custom_image_allows_a_version_the_type_does_not_know() -> None:
    data = stream1_data()
    data["spec"]["components"][1]["version"] = "1.1.1-internal"
    data["spec"]["components"][1]["image"] = "registry.example.com/kafka:1.1.1-internal"
    zone = _resolve(data).components["kafka1"].zone("phx")
    assert zone.image == "registry.example.com/kafka:1.1.1-internal"


def test_identities_come_from_status_and_are_reported_back() -> None:
    data = stream1_data()
    data["status"] = {"members": {"kafka1": {"nextId": 10, "zones": {"phx": {"ids": [7, 8, 9]}}}}}
    resolved = _resolve(data)
    assert resolved.components["kafka1"].zone("phx").member_ids == (7, 8, 9)
    assert resolved.members["kafka1"].next_id == 10
    assert resolved.components["zookeeper1"].zone("phx").member_ids == (1, 2, 3)


def test_previous_identities_can_be_passed_explicitly() -> None:
    first = _resolve(stream1_data())
    data = stream1_data()
    data["spec"]["components"][1]["regions"][0]["zones"].insert(0, {"name": "lvs", "size": 2})
    app = load_application(yaml.safe_dump(data))
    again = resolve(app, TYPES, previous=first.members)
    assert again.components["kafka1"].zone("phx").member_ids == (1, 2, 3)
    assert again.components["kafka1"].zone("lvs").member_ids == (4, 5)
    fresh = resolve(app, TYPES)
    assert fresh.components["kafka1"].zone("lvs").member_ids == (1, 2)

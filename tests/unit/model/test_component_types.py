"""Component types: built-ins complete, loadable from ComponentType resources, checked."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from milkyway.components import (
    builtin_component_types,
    component_type_from_resource,
    registry_from_resources,
)
from milkyway.model import ValidationFailed

TYPES = builtin_component_types()
TALK_VERSIONS = {
    "zookeeper": "3.4.7",
    "kafka": "1.1.0",
    "flink-jobmanager": "1.4.2",
    "flink-taskmanager": "1.4.2",
}


def test_builtin_types() -> None:
    assert set(TYPES) == {"zookeeper", "kafka", "flink-jobmanager", "flink-taskmanager", "etcd"}


@pytest.mark.parametrize("name", sorted(TYPES))
def test_builtin_type_declares_everything(name: str) -> None:
    spec = TYPES[name].spec
    assert spec.workload in spec.workloads
    assert len(spec.versions) >= 2
    assert spec.ports and spec.config_files and spec.params
    assert {"default"} < set(spec.profiles), "default and at least one more profile"
    assert spec.probes.readiness is not None and spec.probes.liveness is not None
    assert spec.container.user > 0 and spec.container.group > 0
    assert spec.container.add_capabilities == []
    for item in spec.config_files:
        assert item.template.strip(), f"{item.name} has an empty template"
    if name in TALK_VERSIONS:
        assert spec.image_for(TALK_VERSIONS[name]) is not None


def test_quorum_types_need_odd_sizes_and_identities() -> None:
    for name in ("zookeeper", "etcd"):
        spec = TYPES[name].spec
        assert spec.disruption.kind == "quorum"
        assert spec.sizing.odd
        assert spec.identity is not None
        assert "deployment" not in spec.workloads
    assert TYPES["zookeeper"].spec.identity.max == 255
    assert TYPES["kafka"].spec.disruption.kind == "zone"


def test_dependencies_and_exports_match_up() -> None:
    exported = {name: {e.name for e in t.spec.exports} for name, t in TYPES.items()}
    assert "connectString" in exported["zookeeper"]
    assert "bootstrapServers" in exported["kafka"]
    assert {"address", "haQuorum"} <= exported["flink-jobmanager"]
    deps = {name: {(d.name, d.type) for d in t.spec.dependencies} for name, t in TYPES.items()}
    assert deps["kafka"] == {("zookeeper", "zookeeper")}
    assert deps["flink-taskmanager"] == {("jobmanager", "flink-jobmanager")}
    assert not TYPES["flink-jobmanager"].spec.dependencies[0].required


def test_hot_reloadable_params_are_declared() -> None:
    hot = {p.name for p in TYPES["kafka"].spec.params if p.hot_reload}
    assert hot == {"logRetentionHours", "numIoThreads", "numNetworkThreads"}


def _custom(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "versions": [{"version": "7.2", "image": "redis:7.2"}],
        "ports": [{"name": "redis", "port": 6379}],
        "configFiles": [{"name": "redis.conf", "template": "port {{ ports.redis }}\n"}],
        "profiles": {"default": {}},
        "container": {"start": "exec redis-server {{ paths.config }}/redis.conf"},
    }
    base.update(spec)
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "ComponentType",
        "metadata": {"name": "redis"},
        "spec": base,
    }


def test_user_types_come_from_resources_and_round_trip() -> None:
    registry = registry_from_resources([_custom()])
    assert "redis" in registry and "zookeeper" in registry
    redis = registry["redis"]
    assert redis.spec.workload == "statefulset"
    again = component_type_from_resource(yaml.safe_load(yaml.safe_dump(redis.to_wire())))
    assert again == redis


def test_builtin_types_round_trip_through_their_wire_form() -> None:
    for item in TYPES.values():
        assert component_type_from_resource(item.to_wire()) == item


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"profiles": {"big": {}}}, "profiles must include 'default'"),
        ({"workload": "deployment", "workloads": ["statefulset"]}, "is not among workloads"),
        ({"ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]}, "duplicate ports: a"),
        (
            {"profiles": {"default": {"params": {"nope": 1}}}},
            "profile 'default' sets unknown params ['nope']",
        ),
        (
            {"identity": {"param": "id"}, "workloads": ["statefulset", "deployment"]},
            "cannot use the deployment workload",
        ),
        ({"probes": {"readiness": {"tcpPort": "http"}}}, "undeclared port 'http'"),
        ({"probes": {"readiness": {}}}, "exactly one of exec, tcpPort or httpPath"),
        ({"versions": []}, "at least 1"),
    ],
)
def test_bad_component_types_are_rejected(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        component_type_from_resource(_custom(**spec))
    assert any(message in e.message for e in caught.value.errors), caught.value.errors

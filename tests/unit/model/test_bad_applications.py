"""A table of bad Applications, each rejected with the expected field path and message."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from milkyway.components import builtin_component_types, registry_from_resources
from milkyway.model import ValidationFailed, load_resolved
from milkyway.operator.flows_catalog import builtin_flow_names

from .conftest import stream1_data, stream1_text

Mutation = Callable[[dict[str, Any]], None]


def _zone(data: dict[str, Any], component: int, zone: int = 0) -> dict[str, Any]:
    return data["spec"]["components"][component]["regions"][0]["zones"][zone]


def _set(component: int, key: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        data["spec"]["components"][component][key] = value

    return mutate


def _set_zone(component: int, key: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        _zone(data, component)[key] = value

    return mutate


def _delete(component: int, key: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        del data["spec"]["components"][component][key]

    return mutate


def _add_zone(component: int, zone: dict[str, Any]) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        data["spec"]["components"][component]["regions"][0]["zones"].append(zone)

    return mutate


def _only(*names: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        data["spec"]["components"] = [c for c in data["spec"]["components"] if c["name"] in names]

    return mutate


def _chain(*mutations: Mutation) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(data)

    return mutate


def _top(key: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        data[key] = value

    return mutate


@dataclass(frozen=True)
class Case:
    id: str
    change: Mutation | str
    """A mutation of the talk's Application, or the full YAML text."""
    path: str
    message: str


_TEXT = stream1_text()

CASES = [
    Case(
        "version-read-as-float",
        _TEXT.replace("version: 3.4.7", "version: 3.10", 1),
        "spec.components[0].version",
        "YAML reads the unquoted `3.10` as the number 3.1",
    ),
    Case(
        "version-read-as-int",
        _TEXT.replace("version: 1.1.0", "version: 2"),
        "spec.components[1].version",
        "as the number 2",
    ),
    Case(
        "region-norway-read-as-false",
        _TEXT.replace("name: NA", "name: NO", 1),
        "spec.components[0].regions[0].name",
        "as the boolean false",
    ),
    Case(
        "duplicate-yaml-key",
        _TEXT.replace("size: 1\n", "size: 1\n              size: 2\n"),
        "spec.components[3].regions[0].zones[0].size",
        "duplicate key",
    ),
    Case("not-yaml", "spec: [unclosed", "", "not valid YAML"),
    Case("two-documents", _TEXT + "---\n" + _TEXT, "", "exactly one YAML document"),
    Case("not-a-mapping", "- just\n- a list\n", "", "must be a mapping"),
    Case("wrong-api-version", _top("apiVersion", "v1"), "apiVersion", "not a Milkyway"),
    Case("wrong-kind", _top("kind", "Deployment"), "kind", "not an Application"),
    Case("unknown-field", _set(0, "confg", "x"), "spec.components[0].confg", "unknown field"),
    Case(
        "unknown-spec-field",
        _top("spec", {"components": [], "extra": 1}),
        "spec.extra",
        "unknown field",
    ),
    Case("missing-version", _delete(1, "version"), "spec.components[1].version", "required field"),
    Case("missing-regions", _delete(1, "regions"), "spec.components[1].regions", "required field"),
    Case("no-components", _top("spec", {"components": []}), "spec.components", "at least 1"),
    Case("missing-name", _top("metadata", {"namespace": "x"}), "metadata.name", "required field"),
    Case(
        "negative-size",
        _set_zone(0, "size", -1),
        "spec.components[0].regions[0].zones[0].size",
        "greater than or equal to 0",
    ),
    Case(
        "huge-size",
        _set_zone(4, "size", 101),
        "spec.components[4].regions[0].zones[0].size",
        "less than or equal to 100",
    ),
    Case(
        "size-not-a-number",
        _set_zone(4, "size", "three"),
        "spec.components[4].regions[0].zones[0].size",
        "whole number",
    ),
    Case(
        "uppercase-name", _set(1, "name", "Kafka1"), "spec.components[1].name", "not a valid name"
    ),
    Case(
        "duplicate-component",
        _set(2, "name", "zookeeper1"),
        "spec.components[2].name",
        "already used by spec.components[0]",
    ),
    Case(
        "duplicate-zone",
        _add_zone(4, {"name": "phx", "size": 1}),
        "spec.components[4].regions[0].zones[1].name",
        "zone listed twice",
    ),
    Case(
        "duplicate-region",
        lambda d: d["spec"]["components"][4]["regions"].append(
            {"name": "NA", "zones": [{"name": "lvs", "size": 1}]}
        ),
        "spec.components[4].regions[1].name",
        "region listed twice",
    ),
    Case(
        "even-zookeeper-ensemble",
        _set_zone(0, "size", 4),
        "spec.components[0].regions",
        "majority quorum: an ensemble of 4 tolerates 1 failure(s), like 3",
    ),
    Case(
        "even-ensemble-across-zones",
        _add_zone(2, {"name": "slc", "size": 1}),
        "spec.components[2].regions",
        "an ensemble of 4",
    ),
    Case(
        "unknown-version",
        _set(1, "version", "0.8.0"),
        "spec.components[1].version",
        "kafka has no version '0.8.0'",
    ),
    Case(
        "unknown-zone-version",
        _set_zone(1, "version", "0.9.0"),
        "spec.components[1].regions[0].zones[0].version",
        "has no version",
    ),
    Case(
        "unknown-type",
        _set(1, "type", "cassandra"),
        "spec.components[1].type",
        "unknown component type",
    ),
    Case(
        "type-not-inferable",
        _set(4, "name", "workers"),
        "spec.components[4].name",
        "cannot be inferred",
    ),
    Case(
        "unknown-profile",
        _set(0, "config", "huge"),
        "spec.components[0].config",
        "no config profile 'huge'",
    ),
    Case(
        "unknown-zone-profile",
        _set_zone(0, "config", "huge"),
        "spec.components[0].regions[0].zones[0].config",
        "no config profile",
    ),
    Case(
        "unknown-param",
        _set(0, "params", {"bogus": 1}),
        "spec.components[0].params.bogus",
        "has no param",
    ),
    Case(
        "param-of-wrong-type",
        _set(0, "params", {"tickTime": "fast"}),
        "spec.components[0].params.tickTime",
        "must be of type integer",
    ),
    Case(
        "param-boolean-is-not-a-number",
        _set_zone(1, "params", {"numIoThreads": True}),
        "spec.components[1].regions[0].zones[0].params.numIoThreads",
        "must be of type integer",
    ),
    Case(
        "param-not-a-scalar",
        _set(0, "params", {"tickTime": [1, 2]}),
        "spec.components[0].params",
        "must be a string, number or boolean",
    ),
    Case(
        "quorum-type-as-deployment",
        _set(0, "workload", "deployment"),
        "spec.components[0].workload",
        "zookeeper cannot run as a deployment (its members need stable identities)",
    ),
    Case(
        "unknown-workload",
        _set(0, "workload", "daemonset"),
        "spec.components[0].workload",
        "not one of the allowed values",
    ),
    Case(
        "unknown-dependency-key",
        _set(1, "uses", {"zk": "zookeeper1"}),
        "spec.components[1].uses.zk",
        "has no dependency 'zk'",
    ),
    Case(
        "binding-to-missing-component",
        _set(1, "uses", {"zookeeper": "zookeeper9"}),
        "spec.components[1].uses.zookeeper",
        "no component named 'zookeeper9'",
    ),
    Case(
        "binding-to-wrong-type",
        _set(4, "uses", {"jobmanager": "kafka1"}),
        "spec.components[4].uses.jobmanager",
        "'kafka1' is a kafka, not a flink-jobmanager",
    ),
    Case(
        "no-zookeeper-before-kafka",
        _only("kafka1"),
        "spec.components[0].uses",
        "no zookeeper component precedes it",
    ),
    Case(
        "standby-jobmanagers-without-zookeeper",
        _chain(_only("flink-jobmanager"), _set_zone(0, "size", 2)),
        "spec.components[0].regions",
        "2 members of flink-jobmanager need a zookeeper",
    ),
    Case(
        "bad-namespace",
        _top("metadata", {"name": "stream1", "namespace": "Data Team"}),
        "metadata.namespace",
        "not a valid name",
    ),
    Case(
        "negative-identity-in-status",
        _top("status", {"members": {"kafka1": {"zones": {"phx": {"ids": [1, -2, 3]}}}}}),
        "status.members.kafka1.zones.phx.ids[1]",
        "greater than or equal to 0",
    ),
    Case(
        "uses-itself",
        _set(0, "uses", {"x": "zookeeper1"}),
        "spec.components[0].uses",
        "cannot use itself",
    ),
    Case(
        "pods-without-nodes",
        _set(0, "workload", "pods"),
        "spec.components[0].regions[0].zones[0].nodes",
        "3 members need 3 nodes, 0 listed",
    ),
    Case(
        "same-node-twice",
        _set_zone(0, "nodes", ["n1", "n1", "n2"]),
        "spec.components[0].regions[0].zones[0].nodes",
        "a node is listed twice",
    ),
    Case(
        "names-too-long",
        _set(2, "name", "zookeeper-with-a-really-very-long-name"),
        "spec.components[2].regions[0].zones[0].name",
        "over 47",
    ),
    Case(
        "bad-quantity",
        _set(1, "resources", {"cpu": "lots"}),
        "spec.components[1].resources.cpu",
        "does not match the pattern",
    ),
    Case(
        "relative-local-path",
        _set(1, "storage", {"localPath": "data"}),
        "spec.components[1].storage.localPath",
        "does not match the pattern",
    ),
    Case(
        "version-with-space",
        _set(1, "version", "1.1 beta"),
        "spec.components[1].version",
        "does not match",
    ),
    Case(
        "image-with-space",
        _set(1, "image", "my image"),
        "spec.components[1].image",
        "does not match",
    ),
    Case(
        "too-many-members",
        _chain(
            _set_zone(0, "size", 99),
            _add_zone(0, {"name": "slc", "size": 99}),
            _add_zone(0, {"name": "lvs", "size": 99}),
        ),
        "spec.components[0].regions",
        "supports 1 to 255 members",
    ),
    Case(
        "size-a-boolean",
        _set_zone(0, "size", True),
        "spec.components[0].regions[0].zones[0].size",
        "must be a whole number",
    ),
    Case(
        "size-a-string",
        _set_zone(0, "size", "1"),
        "spec.components[0].regions[0].zones[0].size",
        "must be a whole number",
    ),
    Case(
        "storage-size-zero",
        _set(0, "storage", {"size": "0"}),
        "spec.components[0].storage.size",
        "volume size 0 must be greater than zero",
    ),
    Case(
        "storage-class-not-a-name",
        _set(0, "storage", {"storageClass": "Bad Class/../x"}),
        "spec.components[0].storage.storageClass",
        "does not match the pattern",
    ),
    Case(
        "cpu-limit-below-request",
        _set(0, "resources", {"cpu": "4", "cpuLimit": "1"}),
        "spec.components[0].resources",
        "cpuLimit 1 is below the cpu request 4; Kubernetes refuses such a pod",
    ),
    Case(
        "memory-limit-below-request",
        _set(0, "resources", {"memory": "4Gi", "memoryLimit": "1000Mi"}),
        "spec.components[0].resources",
        "memoryLimit 1000Mi is below the memory request 4Gi",
    ),
    Case(
        "local-path-with-parent-segment",
        _set(0, "storage", {"localPath": "/data/../etc"}),
        "spec.components[0].storage.localPath",
        "climbs out of its directory with '..'",
    ),
    Case(
        "local-path-with-newline",
        _set(0, "storage", {"localPath": "/data\nx"}),
        "spec.components[0].storage.localPath",
        "does not match the pattern ^/[A-Za-z0-9._/-]*$",
    ),
    Case(
        "flow-override-naming-no-flow",
        _set(0, "flows", {"provision": "no-such-flow"}),
        "spec.components[0].flows.provision",
        "no Flow named 'no-such-flow' exists",
    ),
]

_CYCLIC_TYPES = [
    {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "ComponentType",
        "metadata": {"name": name},
        "spec": {
            "workload": "deployment",
            "workloads": ["deployment"],
            "versions": [{"version": "1.0", "image": f"example/{name}:1.0"}],
            "profiles": {"default": {}},
            "dependencies": [{"name": "peer", "type": peer}],
            "container": {"start": "exec sleep infinity"},
        },
    }
    for name, peer in (("alpha", "beta"), ("beta", "alpha"))
]


def _text(change: Mutation | str) -> str:
    if isinstance(change, str):
        return change
    data = stream1_data()
    change(data)
    return yaml.safe_dump(data, sort_keys=False)


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_application_is_rejected_with_path_and_message(case: Case) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load_resolved(_text(case.change), builtin_component_types(), builtin_flow_names())
    matching = [e for e in caught.value.errors if e.path == case.path]
    assert matching, f"no error at {case.path}; got {[str(e) for e in caught.value.errors]}"
    assert any(case.message in e.message for e in matching), [str(e) for e in matching]
    assert all(e.fix for e in caught.value.errors)


def test_dependency_cycle_is_reported() -> None:
    registry = registry_from_resources(_CYCLIC_TYPES)
    data = stream1_data()
    data["spec"]["components"] = [
        {
            "name": "alpha1",
            "version": "1.0",
            "uses": {"peer": "beta1"},
            "regions": [{"name": "NA", "zones": [{"name": "phx", "size": 1}]}],
        },
        {
            "name": "beta1",
            "version": "1.0",
            "regions": [{"name": "NA", "zones": [{"name": "phx", "size": 1}]}],
        },
    ]
    with pytest.raises(ValidationFailed) as caught:
        load_resolved(yaml.safe_dump(data), registry)
    [error] = caught.value.errors
    assert error.path == "spec.components[0].uses"
    assert error.message == "dependency cycle: alpha1 -> beta1 -> alpha1"
    assert "remove one binding" in error.fix

"""The reconcile's resolve+placement+render is computed once per change of what it reads,
and computed again after any change of it: the spec, a ComponentType, a Cluster."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from milkyway.model.load import application_from_data
from milkyway.operator.reconciler import Caches, Reconciler

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def cluster(name: str, zone: str, version: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "Cluster",
        "metadata": {"name": name, "resourceVersion": version},
        "spec": {
            "region": "NA",
            "zone": zone,
            "kubeconfigSecretRef": {"namespace": "milkyway-system", "name": name},
        },
    }


class World:
    def __init__(self) -> None:
        self.types_version = 0
        self.reconciler = Reconciler(
            client=None,  # type: ignore[arg-type]
            caches=Caches(
                applications={},
                component_types={},
                runs_of=lambda key: [],
                types_version=lambda: self.types_version,
            ),
            registry=None,  # type: ignore[arg-type]
            engines=None,  # type: ignore[arg-type]
            planner=None,  # type: ignore[arg-type]
            recorder=None,  # type: ignore[arg-type]
            clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
        )

    def wisb(self, obj: dict[str, Any], clusters: list[dict[str, Any]]) -> Any:
        app = application_from_data(obj)
        return self.reconciler._wisb(("milkyway", "stream1"), obj, app, clusters)


def stream1(generation: int = 1) -> dict[str, Any]:
    obj = yaml.safe_load((EXAMPLES / "stream1.yaml").read_text())
    obj["metadata"].update(namespace="milkyway", generation=generation, resourceVersion="7")
    return obj


def test_an_unchanged_application_is_not_rendered_again() -> None:
    world = World()
    clusters = [cluster("na-phx-1", "phx")]
    first = world.wisb(stream1(), clusters)
    status_only = {**stream1(), "status": {"phase": "Running"}}
    status_only["metadata"]["resourceVersion"] = "8"
    heartbeat = [cluster("na-phx-1", "phx", version="99")]
    again = world.wisb(status_only, heartbeat)
    assert world.reconciler.renders == 1
    assert again is first
    assert first.desired[("zookeeper1", "phx")]


def test_a_spec_change_renders_again() -> None:
    world = World()
    clusters = [cluster("na-phx-1", "phx")]
    first = world.wisb(stream1(), clusters)
    changed = stream1(generation=2)
    changed["spec"]["components"][0]["params"] = {"tickTime": 4000}
    second = world.wisb(changed, clusters)
    assert world.reconciler.renders == 2
    assert second.desired != first.desired


def test_a_component_type_change_renders_again() -> None:
    world = World()
    clusters = [cluster("na-phx-1", "phx")]
    world.wisb(stream1(), clusters)
    world.types_version += 1
    world.wisb(stream1(), clusters)
    assert world.reconciler.renders == 2


def test_a_cluster_spec_change_renders_again() -> None:
    world = World()
    world.wisb(stream1(), [cluster("na-phx-1", "phx")])
    moved = cluster("na-phx-1", "phx")
    moved["spec"]["dnsDomain"] = "phx.example"
    first_service = world.wisb(stream1(), [moved]).desired
    assert world.reconciler.renders == 2
    assert "phx.example" in str(first_service)
    world.wisb(stream1(), [moved, cluster("na-phx-2", "slc")])
    assert world.reconciler.renders == 3


def test_new_member_identities_in_the_status_render_again() -> None:
    world = World()
    clusters = [cluster("na-phx-1", "phx")]
    first = world.wisb(stream1(), clusters)
    members = {
        name: assignment.model_dump(mode="json", by_alias=True)
        for name, assignment in first.resolved.members.items()
    }
    with_members = {**stream1(), "status": {"members": members}}
    world.wisb(with_members, clusters)
    assert world.reconciler.renders == 2


def test_the_rendering_handed_out_is_a_copy_of_the_lists() -> None:
    world = World()
    clusters = [cluster("na-phx-1", "phx")]
    wisb = world.wisb(stream1(), clusters)
    before = copy.deepcopy(dict(wisb.desired))
    handed = wisb.fresh_desired()
    handed[("zookeeper1", "phx")].clear()
    assert dict(wisb.desired) == before

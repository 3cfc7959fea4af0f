"""The CRDs, Applications and rendered manifests against simulated API servers: the CRDs
are served, the talk's Application is stored unpruned and defaulted, ComponentTypes
round-trip, and every deploy pattern's manifests are accepted and run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.polling import eventually

from milkyway.components import builtin_component_types, component_type_from_resource
from milkyway.model import load_resolved
from milkyway.model.crds import all_crds
from milkyway.render import render_application
from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.controllers.manager import start_control_plane

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MODEL_KINDS = ("Application", "Cluster", "ComponentType")


def _example(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / name).read_text())


@pytest.fixture
def management() -> ClusterAPI:
    api = ClusterAPI(name="management")
    for crd in all_crds():
        if crd["spec"]["names"]["kind"] in MODEL_KINDS:
            api.create(crd)
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "milkyway"}})
    return api


@pytest.fixture
async def member() -> AsyncIterator[ClusterAPI]:
    api = ClusterAPI(name="phx")
    plane = start_control_plane(api, 3, ControlPlaneConfig.fast())
    try:
        yield api
    finally:
        await plane.stop()


def test_the_talks_application_is_stored_as_written(management: ClusterAPI) -> None:
    application = _example("stream1.yaml")
    stored = management.create(application)
    assert stored["spec"] == application["spec"]
    listed = management.list("milkyway.ebay.com/v1/applications", namespace="milkyway")
    assert [a["metadata"]["name"] for a in listed["items"]] == ["stream1"]


def test_the_server_applies_the_models_defaults(management: ClusterAPI) -> None:
    application = _example("stream1.yaml")
    del application["spec"]["components"][0]["config"]
    stored = management.create(application)
    assert stored["spec"]["components"][0]["config"] == "default"


def test_the_server_rejects_what_the_schema_forbids(management: ClusterAPI) -> None:
    application = _example("stream1.yaml")
    application["spec"]["components"][0]["regions"][0]["zones"][0]["size"] = -1
    with pytest.raises(ApiError) as caught:
        management.create(application)
    assert caught.value.code == 422
    assert any("size" in cause.field for cause in caught.value.causes)


def test_status_with_member_identities_is_kept(management: ClusterAPI) -> None:
    stored = management.create(_example("stream1.yaml"))
    stored["status"] = {
        "phase": "Running",
        "members": {"zookeeper1": {"nextId": 4, "zones": {"phx": {"ids": [1, 2, 3]}}}},
    }
    updated = management.update(stored, subresource="status")
    assert updated["status"]["members"]["zookeeper1"]["zones"]["phx"]["ids"] == [1, 2, 3]


def test_clusters_and_component_types_round_trip(management: ClusterAPI) -> None:
    for cluster in yaml.safe_load_all((EXAMPLES / "clusters.yaml").read_text()):
        management.create(cluster)
    names = [
        c["metadata"]["name"] for c in management.list("milkyway.ebay.com/v1/clusters")["items"]
    ]
    assert sorted(names) == ["eu-ams-1", "na-phx-1", "na-slc-1"]
    for ctype in builtin_component_types().values():
        stored = management.create(ctype.to_wire())
        assert component_type_from_resource(stored).spec == ctype.spec


@pytest.mark.parametrize("example", ["stream1.yaml", "deploymentset.yaml", "local-pods.yaml"])
async def test_every_pattern_runs_on_a_simulated_cluster(member: ClusterAPI, example: str) -> None:
    nodes = [n["metadata"]["name"] for n in member.list("v1/nodes")["items"]]
    application = _example(example)
    for component in application["spec"]["components"]:
        for region in component["regions"]:
            for zone in region["zones"]:
                if "nodes" in zone:
                    zone["nodes"] = nodes[: zone["size"]]
    resolved = load_resolved(yaml.safe_dump(application), builtin_component_types())
    member.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": resolved.namespace}}
    )
    for (_component, zone), manifests in render_application(resolved).items():
        assert zone == "phx"
        for manifest in manifests:
            member.create(manifest)
    expected = sum(c.size for c in resolved.components.values())

    def ready_pods() -> list[dict[str, Any]]:
        pods = member.list("v1/pods", namespace=resolved.namespace)["items"]
        ready = [
            p
            for p in pods
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p.get("status", {}).get("conditions", [])
            )
        ]
        return ready if len(ready) == expected else []

    pods = await eventually(ready_pods, within=20, what=f"{expected} ready pods of {example}")
    claims = member.list("v1/persistentvolumeclaims", namespace=resolved.namespace)["items"]
    assert all(c["status"]["phase"] == "Bound" for c in claims)
    if example == "local-pods.yaml":
        placed = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods}
        assert sorted(placed.values()) == sorted(nodes)

"""Pure parts of the reconcile: zone placement, the planner's view of FlowRuns, status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from milkyway.model import load_application
from milkyway.model.errors import FieldError
from milkyway.operator.reconciler import (
    invalid_status,
    known_status,
    place_zones,
    running_flows,
)
from milkyway.operator.status_writer import merge_conditions, merged_status

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def cluster(name: str, zone: str) -> dict[str, Any]:
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {"region": "NA", "zone": zone},
    }


def run(name: str, component: str, phase: str, created: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "labels": {"milkyway.ebay.com/component": component},
        },
        "spec": {"flow": "milkyway-provision"},
        "status": {"phase": phase},
    }


def test_each_zone_goes_to_the_one_cluster_serving_it() -> None:
    app = load_application((EXAMPLES / "multi-region.yaml").read_text())
    placement = place_zones(
        app, [cluster("na-phx-1", "phx"), cluster("na-slc-1", "slc"), cluster("eu-ams-1", "ams")]
    )
    assert placement.clusters == {"phx": "na-phx-1", "slc": "na-slc-1", "ams": "eu-ams-1"}
    assert not placement.missing and not placement.errors


def test_a_zone_without_cluster_is_missing_and_two_clusters_are_an_error() -> None:
    app = load_application((EXAMPLES / "multi-region.yaml").read_text())
    placement = place_zones(
        app, [cluster("na-phx-1", "phx"), cluster("na-phx-2", "phx"), cluster("a", "ams")]
    )
    assert any("zone slc: no Cluster serves it" in m for m in placement.missing)
    error = placement.errors[0]
    assert error.path == "spec.components[0].regions[0].zones[0].cluster"
    assert "na-phx-1, na-phx-2" in error.message
    assert error.fix.startswith("set cluster: to one of")


def test_explicit_cluster_wins_and_must_exist() -> None:
    text = (
        (EXAMPLES / "stream1.yaml")
        .read_text()
        .replace(
            "            - name: phx\n              size: 3\n",
            "            - name: phx\n              size: 3\n              cluster: phx-b\n",
            1,
        )
    )
    app = load_application(text)
    placement = place_zones(app, [cluster("phx-a", "phx"), cluster("phx-b", "phx")])
    assert placement.clusters == {"phx": "phx-b"}
    placement = place_zones(app, [cluster("phx-a", "phx")])
    assert "zone phx: Cluster 'phx-b' is not registered" in placement.missing


def test_planner_sees_unfinished_runs_and_only_the_latest_finished_one() -> None:
    runs = [
        run("zk-1", "zk", "Failed", "2026-01-01T00:00:00Z"),
        run("zk-2", "zk", "Succeeded", "2026-01-01T00:01:00Z"),
        run("kafka-1", "kafka", "Failed", "2026-01-01T00:00:00Z"),
        run("flink-1", "flink", "Failed", "2026-01-01T00:00:00Z"),
        run("flink-2", "flink", "Running", "2026-01-01T00:02:00Z"),
    ]
    seen = {(r.name, r.phase) for r in running_flows(runs)}
    assert seen == {("zk-2", "Succeeded"), ("kafka-1", "Failed"), ("flink-2", "Running")}


def test_invalid_status_names_field_value_and_fix() -> None:
    error = FieldError("spec.components[0].version", "9.9", "unknown version", "use 3.8.4")
    status = invalid_status([error], 3)
    assert status["phase"] == "Failed"
    ready = status["conditions"][0]
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "spec.components[0].version = '9.9': unknown version; fix: use 3.8.4" in ready["message"]


def test_known_status_drops_fields_the_crd_would_prune() -> None:
    status = known_status({"phase": "Running", "surprise": 1, "currentFlow": None, "members": {}})
    assert status == {"phase": "Running", "members": {}}


def test_condition_transition_time_kept_while_status_holds() -> None:
    old = [{"type": "Ready", "status": "False", "lastTransitionTime": "T0"}]
    same = merge_conditions(old, [{"type": "Ready", "status": "False", "reason": "x"}], "T1")
    assert same[0]["lastTransitionTime"] == "T0"
    flipped = merge_conditions(old, [{"type": "Ready", "status": "True"}], "T1")
    assert flipped[0]["lastTransitionTime"] == "T1"
    current = {"phase": "Running", "conditions": same}
    assert merged_status(current, {"phase": "Running", "conditions": same}, "T2") == current


def test_an_invalid_component_type_is_skipped_not_fatal() -> None:
    from milkyway.operator.reconciler import component_types

    broken = {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "ComponentType",
        "metadata": {"name": "broken"},
        "spec": {"unexpected": True},
    }
    types = component_types([broken])
    assert "broken" not in types
    assert "zookeeper" in types

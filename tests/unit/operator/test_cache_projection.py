"""The member caches keep only what their readers use (milkyway.kube.projection): the
observation and the planner's diff of a zone are the same from the projected objects as
from the whole ones, whatever state its members are in; and the bulk is gone."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from milkyway.components import builtin_component_types
from milkyway.kube.member_cache import MemberCache
from milkyway.kube.projection import project
from milkyway.model.load import application_from_data
from milkyway.model.resolve import resolve
from milkyway.operator.disk_watch import watched
from milkyway.operator.health.checks import ZonePods, zone_findings
from milkyway.operator.health.targets import zone_targets
from milkyway.operator.observe import ZoneObservation, observe_zone
from milkyway.operator.planner.desired import zone_want
from milkyway.operator.planner.diff import diff_zone
from milkyway.render.zone import render_zone

_spec = importlib.util.spec_from_file_location(
    "planner_world", Path(__file__).with_name("planner_world.py")
)
assert _spec is not None and _spec.loader is not None
world = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("planner_world", world)
_spec.loader.exec_module(world)
Member = world.Member

TYPES = builtin_component_types()
MANAGED_FIELDS = [{"manager": "kubelet", "operation": "Update", "fieldsV1": {"f:status": {}}}]


def _zone() -> tuple[Any, Any, list[dict[str, Any]]]:
    app = application_from_data(
        {
            "apiVersion": "milkyway.ebay.com/v1",
            "kind": "Application",
            "metadata": {"name": "app", "namespace": "ns"},
            "spec": {
                "components": [
                    {
                        "name": "zookeeper1",
                        "version": "3.8.4",
                        "regions": [{"name": "NA", "zones": [{"name": "z1", "size": 3}]}],
                    },
                    {
                        "name": "kafka1",
                        "version": "3.9.1",
                        "regions": [{"name": "NA", "zones": [{"name": "z1", "size": 3}]}],
                    },
                ]
            },
        }
    )
    resolved = resolve(app, TYPES)
    manifests = render_zone(resolved, "kafka1", "z1")
    return resolved, resolved.components["kafka1"], manifests


def _as_a_cluster_sends(obs: ZoneObservation) -> list[dict[str, Any]]:
    """The zone's objects whole, as an API server sends them: pods with their template's
    containers and volumes, container statuses, field-manager bookkeeping on all."""
    objects = copy.deepcopy(list(obs.objects.values()))
    sts = next(o for o in objects if o["kind"] == "StatefulSet")
    pod_spec = sts["spec"]["template"]["spec"]
    for obj in objects:
        obj["metadata"]["managedFields"] = MANAGED_FIELDS
        if obj["kind"] == "Pod":
            volumes = [*obj["spec"].get("volumes", []), *pod_spec.get("volumes", [])]
            obj["spec"] = {**copy.deepcopy(pod_spec), **obj["spec"], "volumes": volumes}
            ready = any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in obj["status"].get("conditions") or []
            )
            state = (
                {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
                if ready
                else {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}
            )
            obj["status"]["containerStatuses"] = [
                {
                    "name": c["name"],
                    "image": c.get("image"),
                    "ready": ready,
                    "restartCount": 2,
                    "state": state,
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
                }
                for c in pod_spec["containers"]
            ]
            obj["status"]["podIP"] = "10.0.0.1"
            obj["status"]["conditions"] += [
                {"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
                for t in ("PodScheduled", "Initialized", "ContainersReady")
            ]
            obj["metadata"]["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": sts["metadata"]["name"],
                    "uid": "sts-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
    return objects


SITUATIONS = {
    "all ready": [Member(), Member(), Member()],
    "stale config and version": [Member("stale-config"), Member("stale-version"), Member()],
    "down and missing": [Member("down", since="2026-01-01T01:00:00Z"), Member("missing")],
    "failed disk": [Member(disk_failed=True), Member(), Member()],
    "lost node": [Member(node_lost="2026-01-01T02:00:00Z"), Member(), Member()],
    "fresh volume and disk alert": [
        Member("down", fresh_volume=True),
        Member(disk_alert=("Critical", "2026-01-01T03:00:00Z")),
        Member(),
    ],
    "scaled out": [Member(), Member(), Member(), Member()],
}


@pytest.mark.parametrize("situation", sorted(SITUATIONS))
@pytest.mark.parametrize("config_map_current", [True, False])
def test_projected_objects_give_the_same_observation_and_diff(
    situation: str, config_map_current: bool
) -> None:
    resolved, component, manifests = _zone()
    skinny = world.live_zone(
        "kafka1",
        "z1",
        manifests,
        SITUATIONS[situation],
        config_map_current=config_map_current,
        local_volumes=True,
    )
    whole = _as_a_cluster_sends(skinny)
    full = observe_zone("kafka1", "z1", "z1", copy.deepcopy(whole))
    projected = observe_zone("kafka1", "z1", "z1", [project(o) for o in whole])
    assert projected.members == full.members
    assert set(projected.objects) == set(full.objects)
    want = zone_want(resolved, component, "z1", manifests, {})
    a, b = diff_zone(want, full), diff_zone(want, projected)
    for field in (
        "provisioned",
        "missing_objects",
        "grow",
        "removed",
        "down",
        "stale",
        "upgrade",
        "reload",
        "broken",
        "seen",
        "ready",
        "updated",
    ):
        assert getattr(a, field) == getattr(b, field), field
    pods = [o for o in whole if o["kind"] == "Pod"]
    assert [watched(project(p)) for p in pods] == [watched(p) for p in pods]
    # The health check's findings (it reads the cache too) say the same of each member.
    wisb = SimpleNamespace(
        resolved=resolved,
        desired={("kafka1", "z1"): manifests},
        placement=SimpleNamespace(clusters={"z1": "z1"}),
    )
    target = next(t for t in zone_targets(wisb) if t.component == "kafka1")
    checks = ("members", "quorum")
    assert zone_findings(ZonePods(target, [project(p) for p in pods]), checks) == (
        zone_findings(ZonePods(target, copy.deepcopy(pods)), checks)
    )


def test_the_bulk_and_the_field_manager_bookkeeping_are_dropped() -> None:
    _resolved, _component, manifests = _zone()
    skinny = world.live_zone("kafka1", "z1", manifests, [Member()], local_volumes=True)
    whole = _as_a_cluster_sends(skinny)
    for obj in whole:
        kept = project(obj)
        assert "managedFields" not in kept["metadata"], obj["kind"]
        assert kept["metadata"]["name"] == obj["metadata"]["name"]
    pod = project(next(o for o in whole if o["kind"] == "Pod"))
    assert all(set(c) == {"name"} for c in pod["spec"]["containers"])
    assert all("persistentVolumeClaim" in v for v in pod["spec"]["volumes"])
    assert "podIP" not in pod["status"]
    assert all(set(c) == {"name", "restartCount"} for c in pod["status"]["containerStatuses"])
    assert [c["type"] for c in pod["status"]["conditions"]] == ["Ready"]
    assert pod["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "app-kafka1-z1"}
    ]
    sts = project(next(o for o in whole if o["kind"] == "StatefulSet"))
    assert set(sts["spec"]) == {"replicas", "template"}
    assert set(sts["spec"]["template"]) == {"metadata"}
    config_map = project(next(o for o in whole if o["kind"] == "ConfigMap"))
    assert "data" not in config_map
    assert len(repr(project(next(o for o in whole if o["kind"] == "Pod")))) * 3 < len(
        repr(next(o for o in whole if o["kind"] == "Pod"))
    )


def test_the_member_cache_keeps_the_projection_and_a_dropped_field_wakes_nobody() -> None:
    _resolved, _component, manifests = _zone()
    skinny = world.live_zone("kafka1", "z1", manifests, [Member()])
    pod = next(o for o in _as_a_cluster_sends(skinny) if o["kind"] == "Pod")
    calls: list[Any] = []
    member = MemberCache("m", client=None, on_change=lambda c, a: calls.append(a))  # type: ignore[arg-type]
    # Every informer of the cache (owned kinds, Nodes, volumes) caches the projection.
    transforms = {informer._transform for informer in member._informers}
    assert transforms == {project}
    member._owned_changed("ADDED", project(pod))
    cached = member.objects("ns", "app")[0]
    assert "managedFields" not in cached["metadata"]
    assert set(cached["spec"]["containers"][0]) == {"name"}
    assert len(calls) == 1
    later = copy.deepcopy(pod)
    later["metadata"]["resourceVersion"] = "2"
    later["status"]["podIP"] = "10.0.0.2"
    later["status"]["containerStatuses"][0]["state"] = {"running": {"startedAt": "later"}}
    member._owned_changed("MODIFIED", project(later))
    assert len(calls) == 1
    restarted = copy.deepcopy(later)
    restarted["status"]["containerStatuses"][0]["restartCount"] = 3
    member._owned_changed("MODIFIED", project(restarted))
    assert len(calls) == 2


def test_repeated_strings_of_separately_decoded_objects_are_one_object() -> None:
    _resolved, _component, manifests = _zone()
    skinny = world.live_zone("kafka1", "z1", manifests, [Member(), Member()])
    pods = [o for o in _as_a_cluster_sends(skinny) if o["kind"] == "Pod"]
    # As from two JSON documents: equal strings, distinct objects.
    a, b = (json.loads(json.dumps(p)) for p in pods)
    key = next(iter(a["metadata"]["labels"]))
    assert a["metadata"]["labels"][key] is not b["metadata"]["labels"][key]
    pa, pb = project(a), project(b)
    label_a, label_b = next(iter(pa["metadata"]["labels"])), next(iter(pb["metadata"]["labels"]))
    assert label_a is label_b
    assert pa["metadata"]["labels"][label_a] is pb["metadata"]["labels"][label_b]
    assert pa["status"]["conditions"][0]["type"] is pb["status"]["conditions"][0]["type"]
    assert pa["spec"]["containers"][0]["name"] is pb["spec"]["containers"][0]["name"]
    assert pa["metadata"]["namespace"] is pb["metadata"]["namespace"]
    # Unique values stay what they were.
    assert pa["metadata"]["uid"] == a["metadata"]["uid"]

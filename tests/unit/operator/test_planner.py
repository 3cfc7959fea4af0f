"""The planner on hand-picked situations: which flow, with which parameters, and the
status it writes."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from milkyway.components import builtin_component_types
from milkyway.model.component_type import DisruptionPolicy
from milkyway.model.errors import ValidationFailed
from milkyway.model.load import application_from_data
from milkyway.model.resolve import resolve
from milkyway.operator.flows_catalog import build_catalog, flow_name, variant_name
from milkyway.operator.planner import RunningFlow, max_unavailable, plan
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


def _app(zk: dict[str, int], kafka: dict[str, int] | None = None, **zk_extra: Any) -> Any:
    def comp(name: str, version: str, sizes: dict[str, int], **extra: Any) -> dict[str, Any]:
        zones = [{"name": z, "size": n} for z, n in sizes.items()]
        return {
            "name": name,
            "version": version,
            "regions": [{"name": "NA", "zones": zones}],
            **extra,
        }

    components = [comp("zookeeper1", "3.4.7", zk, **zk_extra)]
    if kafka is not None:
        components.append(comp("kafka1", "1.1.0", kafka))
    return application_from_data(
        {
            "apiVersion": "milkyway.ebay.com/v1",
            "kind": "Application",
            "metadata": {"name": "app", "namespace": "ns"},
            "spec": {"components": components},
        }
    )


def _setup(app: Any) -> tuple[Any, dict]:
    resolved = resolve(app, TYPES)
    desired = {
        (n, z.name): render_zone(resolved, n, z.name)
        for n, c in resolved.components.items()
        for z in c.zones
    }
    return resolved, desired


def _live(desired: dict, component: str, zone: str, members: list[Any], **kw: Any) -> Any:
    return world.live_zone(component, zone, desired[(component, zone)], members, **kw)


def test_quorum_budget() -> None:
    quorum = DisruptionPolicy(kind="quorum")
    assert [max_unavailable(quorum, n) for n in (1, 2, 3, 4, 5, 7)] == [1, 1, 1, 1, 2, 3]
    assert max_unavailable(DisruptionPolicy(kind="rackAware", max_unavailable=3), 9) == 3


def test_dependents_wait_for_what_they_use() -> None:
    app = _app({"phx": 3}, {"phx": 2})
    resolved, desired = _setup(app)
    result = plan(app, resolved, desired, {}, [], now=NOW, clusters={})
    assert [r.component for r in result.start] == ["zookeeper1"]
    assert result.waiting == ("kafka1: waiting for zookeeper1 to be Ready with no flow running",)

    observed = {("zookeeper1", "phx"): _live(desired, "zookeeper1", "phx", [Member()] * 3)}
    finishing = [RunningFlow("run-1", "milkyway-provision", "zookeeper1", "Running")]
    result = plan(app, resolved, desired, observed, finishing, now=NOW, clusters={})
    assert result.start == (), "a dependency still being provisioned is not settled yet"
    result = plan(app, resolved, desired, observed, [], now=NOW, clusters={})
    assert [(r.operation, r.component) for r in result.start] == [("provision", "kafka1")]
    zone = result.start[0].params["zones"][0]
    assert zone["cluster"] == "phx" and zone["requireUpdated"] and zone["replicas"] == 2


def test_cluster_resource_names_the_cluster_of_a_zone() -> None:
    app = _app({"phx": 1})
    resolved, desired = _setup(app)
    clusters = {"phx": {"metadata": {"name": "na-phx-1"}}}
    result = plan(app, resolved, desired, {}, [], now=NOW, clusters=clusters)
    assert result.start[0].params["zones"][0]["cluster"] == "na-phx-1"


def test_a_running_flow_blocks_its_component_and_changes_are_coalesced() -> None:
    app = _app({"phx": 3}, params={"tickTime": 3000})
    resolved, desired = _setup(app)
    observed = {
        ("zookeeper1", "phx"): _live(desired, "zookeeper1", "phx", [Member("stale-config")] * 3)
    }
    running = [RunningFlow("run-1", "milkyway-provision", "zookeeper1", "Running")]
    busy = plan(app, resolved, desired, observed, running, now=NOW, clusters={})
    assert busy.start == ()
    assert busy.waiting == ("zookeeper1: flow run-1 (milkyway-provision) is Running",)
    assert busy.status["phase"] == "Updating"

    done = [RunningFlow("run-1", "milkyway-provision", "zookeeper1", "Succeeded")]
    after = plan(app, resolved, desired, observed, done, now=NOW, clusters={})
    assert [(r.operation, r.params["restart"]) for r in after.start] == [("config-update", True)]
    assert [m["name"] for m in after.start[0].params["members"]] == [
        "app-zookeeper1-phx-2",
        "app-zookeeper1-phx-1",
        "app-zookeeper1-phx-0",
    ]


def test_hot_reload_when_only_the_config_map_differs() -> None:
    app = _app({"phx": 1}, {"phx": 3})
    resolved, desired = _setup(app)
    observed = {
        ("zookeeper1", "phx"): _live(desired, "zookeeper1", "phx", [Member()]),
        ("kafka1", "phx"): _live(desired, "kafka1", "phx", [Member()] * 3),
    }
    cm = observed[("kafka1", "phx")]
    config_map = next(o for o in cm.objects.values() if o["kind"] == "ConfigMap")
    config_map["metadata"]["annotations"]["milkyway.ebay.com/config-hash"] = "before"
    result = plan(app, resolved, desired, observed, [], now=NOW, clusters={})
    assert [(r.operation, r.params["restart"], r.params["members"]) for r in result.start] == [
        ("config-update", False, [])
    ]


def test_upgrade_and_rack_aware_batches() -> None:
    app = _app({"phx": 1}, {"phx": 2, "slc": 2})
    resolved, desired = _setup(app)
    observed = {
        ("zookeeper1", "phx"): _live(desired, "zookeeper1", "phx", [Member()]),
        ("kafka1", "phx"): _live(desired, "kafka1", "phx", [Member("stale-version")] * 2),
        ("kafka1", "slc"): _live(desired, "kafka1", "slc", [Member("stale-version")] * 2),
    }
    (request,) = plan(app, resolved, desired, observed, [], now=NOW, clusters={}).start
    assert request.operation == "rolling-upgrade" and request.flow == "milkyway-rolling-upgrade"
    assert [m["batch"] for m in request.params["members"]] == ["phx", "phx", "slc", "slc"]
    assert (request.params["maxDown"], request.params["alreadyDown"]) == (1, 0)
    assert request.mutex == "milkyway/ns/app/kafka1"


def test_no_rolling_restart_while_the_quorum_has_no_room() -> None:
    app = _app({"phx": 3}, params={"tickTime": 3000})
    resolved, desired = _setup(app)
    members = [
        Member("stale-config"),
        Member("stale-config"),
        Member("down", "2026-06-01T11:59:59Z"),
    ]
    observed = {("zookeeper1", "phx"): _live(desired, "zookeeper1", "phx", members)}
    result = plan(app, resolved, desired, observed, [], now=NOW, clusters={})
    assert result.start == ()
    assert any("not Ready for 1s" in w for w in result.waiting)
    assert result.requeue_after == pytest.approx(59.0)
    assert result.status["phase"] == "Degraded"
    degraded = next(c for c in result.status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "MembersUnavailable"


def test_remediation_repairs_the_down_member_within_budget() -> None:
    app = _app({"phx": 3})
    resolved, desired = _setup(app)
    members = [Member(), Member("down"), Member()]
    observed = {("zookeeper1", "phx"): _live(desired, "zookeeper1", "phx", members)}
    (request,) = plan(app, resolved, desired, observed, [], now=NOW, clusters={}).start
    assert request.operation == "remediate"
    assert [m["name"] for m in request.params["members"]] == ["app-zookeeper1-phx-1"]
    assert (request.params["maxDown"], request.params["alreadyDown"]) == (1, 0)


def test_scale_in_removes_highest_ordinals_and_their_claims() -> None:
    app = _app({"phx": 3})
    resolved, desired = _setup(app)
    observed = {("zookeeper1", "phx"): _live(desired, "zookeeper1", "phx", [Member()] * 5)}
    (request,) = plan(app, resolved, desired, observed, [], now=NOW, clusters={}).start
    assert request.operation == "scale-in"
    removed = request.params["shrink"][0]["removed"]
    assert [(r["pod"], r["claim"]) for r in removed] == [
        ("app-zookeeper1-phx-4", "data-app-zookeeper1-phx-4"),
        ("app-zookeeper1-phx-3", "data-app-zookeeper1-phx-3"),
    ]


def test_replace_request_annotation() -> None:
    app = _app({"phx": 3})
    app.metadata.annotations = {
        "milkyway.ebay.com/replace": "app-zookeeper1-phx-0@2026-05-01T00:00:00Z"
    }
    resolved, desired = _setup(app)
    observed = {("zookeeper1", "phx"): _live(desired, "zookeeper1", "phx", [Member()] * 3)}
    (request,) = plan(app, resolved, desired, observed, [], now=NOW, clusters={}).start
    assert request.operation == "replace-member" and "requested" in request.reason
    assert request.params["members"][0]["claim"] == "data-app-zookeeper1-phx-0"

    app.metadata.annotations = {
        "milkyway.ebay.com/replace": "app-zookeeper1-phx-0@2025-01-01T00:00:00Z"
    }
    assert plan(app, resolved, desired, observed, [], now=NOW, clusters={}).start == ()


def test_status_of_a_running_application() -> None:
    app = _app({"phx": 2, "slc": 1})
    resolved, desired = _setup(app)
    observed = {
        ("zookeeper1", z): _live(desired, "zookeeper1", z, [Member()] * n)
        for z, n in (("phx", 2), ("slc", 1))
    }
    result = plan(app, resolved, desired, observed, [], now=NOW, clusters={})
    assert result.start == () and result.requeue_after is None
    assert result.status["phase"] == "Running"
    zone = result.status["components"]["zookeeper1"]["zones"]["slc"]
    assert (zone["desired"], zone["ready"], zone["updated"], zone["version"]) == (1, 1, 1, "3.4.7")
    # Where each member runs, by pod name.
    pods = result.status["components"]["zookeeper1"]["zones"]["phx"]["pods"]
    assert [(p["node"], p["ready"], p["version"]) for p in pods] == [
        ("node-0", True, "3.4.7"),
        ("node-1", True, "3.4.7"),
    ]
    assert [p["name"] for p in pods] == sorted(p["name"] for p in pods)
    ready = next(c for c in result.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == (
        "True",
        "AllComponentsReady",
        "2026-06-01T12:00:00Z",
    )


def test_flow_names_follow_overrides() -> None:
    assert flow_name("config-update", "kafka") == "milkyway-config-update"
    assert flow_name("config-update", "kafka", {"member-health": "x"}) == variant_name(
        "milkyway-config-update", "kafka"
    )
    assert (
        flow_name("config-update", "kafka", {"config-update": "t"}, {"config-update": "a"}) == "a"
    )
    assert flow_name("provision", "kafka", {"provision": "t"}) == "t"
    with pytest.raises(KeyError, match="unknown operation"):
        flow_name("reboot", "kafka")


def test_type_variants_replace_the_shared_step_everywhere() -> None:
    kafka = TYPES["kafka"]
    spec = kafka.spec.model_copy(update={"flows": {"member-health": "milkyway-health-check"}})
    catalog = build_catalog([kafka.model_copy(update={"spec": spec})])
    snapshot = catalog.snapshot("milkyway-rolling-upgrade--kafka")
    names = {key.split("@")[0] for key in snapshot}
    assert "milkyway-restart-member--kafka" in names
    assert "milkyway-health-check" in names and "milkyway-member-health" not in names
    assert "milkyway-rolling-upgrade" in catalog.names()


def test_unknown_operation_is_rejected_naming_path_value_and_fix() -> None:
    with pytest.raises(ValidationFailed) as caught:
        _app({"phx": 1}, flows={"reboot": "mine"})
    message = str(caught.value)
    assert "spec.components[0].flows" in message and "'reboot'" in message
    assert "use one of: provision, scale-out" in message


def test_a_failed_flow_is_retried_after_a_pause() -> None:
    app = _app({"phx": 3}, params={"tickTime": 3000})
    resolved, desired = _setup(app)
    observed = {
        ("zookeeper1", "phx"): _live(desired, "zookeeper1", "phx", [Member("stale-config")] * 3)
    }
    failed = [
        RunningFlow(
            "run-1", "milkyway-config-update", "zookeeper1", "Failed", "2026-06-01T11:59:50Z"
        )
    ]
    soon = plan(app, resolved, desired, observed, failed, now=NOW, clusters={})
    assert soon.start == () and soon.requeue_after == pytest.approx(20.0)
    assert soon.status["phase"] == "Failed"
    later = plan(app, resolved, desired, observed, failed, now=NOW.replace(minute=1), clusters={})
    assert [r.operation for r in later.start] == ["config-update"]


def test_nothing_is_planned_for_a_component_with_an_unreachable_zone() -> None:
    from milkyway.operator.observe import observe_zone

    app = _app({"phx": 1, "slc": 2})
    resolved, desired = _setup(app)
    observed = {
        ("zookeeper1", "phx"): _live(desired, "zookeeper1", "phx", [Member()]),
        ("zookeeper1", "slc"): observe_zone("zookeeper1", "slc", "", [], reachable=False),
    }
    result = plan(app, resolved, desired, observed, [], now=NOW, clusters={})
    assert result.start == ()
    assert result.waiting == ("zookeeper1: no Cluster serves zone slc; register one",)
    observed[("zookeeper1", "slc")] = observe_zone("zookeeper1", "slc", "c2", [], reachable=False)
    result = plan(app, resolved, desired, observed, [], now=NOW, clusters={})
    assert result.waiting == ("zookeeper1: cluster c2 of zone slc unreachable; waiting",)
    degraded = next(c for c in result.status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "ClusterUnreachable"


def test_requested_restart_comes_after_every_other_change() -> None:
    app = _app({"phx": 3})
    app.metadata.annotations = {"milkyway.ebay.com/restart": "zookeeper1@2026-05-01T00:00:00Z"}
    resolved, desired = _setup(app)
    observed = {("zookeeper1", "phx"): _live(desired, "zookeeper1", "phx", [Member()] * 3)}
    (request,) = plan(app, resolved, desired, observed, [], now=NOW, clusters={}).start
    assert (request.operation, request.flow) == ("restart", "milkyway-restart")
    assert {m["restartBefore"] for m in request.params["members"]} == {"2026-05-01T00:00:00Z"}
    assert request.params["members"][0]["name"] == "app-zookeeper1-phx-2"

    stale = {
        ("zookeeper1", "phx"): _live(desired, "zookeeper1", "phx", [Member("stale-version")] * 3)
    }
    (first,) = plan(app, resolved, desired, stale, [], now=NOW, clusters={}).start
    assert first.operation == "rolling-upgrade"

    app.metadata.annotations = {"milkyway.ebay.com/restart": "zookeeper1@2025-01-01T00:00:00Z"}
    assert plan(app, resolved, desired, observed, [], now=NOW, clusters={}).start == ()


@pytest.mark.parametrize(
    ("annotation", "value", "operation"),
    [
        ("milkyway.ebay.com/replace", "app-zookeeper1-phx-0", "replace-member"),
        ("milkyway.ebay.com/restart", "zookeeper1", "restart"),
    ],
)
def test_a_request_stamped_ahead_waits_for_its_time(
    annotation: str, value: str, operation: str
) -> None:
    app = _app({"phx": 3})
    app.metadata.annotations = {annotation: f"{value}@2026-06-01T12:00:02Z"}
    resolved, desired = _setup(app)
    observed = {("zookeeper1", "phx"): _live(desired, "zookeeper1", "phx", [Member()] * 3)}
    early = plan(app, resolved, desired, observed, [], now=NOW, clusters={})
    assert early.start == ()
    assert early.requeue_after == 2.0
    due = NOW.replace(second=2)
    (request,) = plan(app, resolved, desired, observed, [], now=due, clusters={}).start
    assert request.operation == operation

"""Properties of the planner over random WISB/WIRI pairs (hypothesis).

* at most one flow per component, and none for a component with a flow in progress;
* no rolling flow unless the disruption policy leaves room given the members down, and
  never a budget the engine would have to refuse (``maxDown - alreadyDown >= 1``);
* deterministic: the same inputs give the same plan;
* convergent: applying each started flow's intended effect to the observation and
  planning again ends, within a few rounds, in an empty plan with the Application Running.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milkyway.components import builtin_component_types
from milkyway.model.application import LostMember
from milkyway.model.load import application_from_data
from milkyway.model.resolve import ResolvedApplication, resolve
from milkyway.operator.observe import ZoneObservation
from milkyway.operator.planner import Plan, RunningFlow, max_unavailable, plan
from milkyway.render.zone import render_zone

_spec = importlib.util.spec_from_file_location(
    "planner_world", Path(__file__).with_name("planner_world.py")
)
assert _spec is not None and _spec.loader is not None
world = importlib.util.module_from_spec(_spec)
sys.modules["planner_world"] = world
_spec.loader.exec_module(world)

TYPES = builtin_component_types()
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
RECENT = "2026-06-01T11:59:50Z"
LATER = datetime(2026, 6, 1, 13, 0, 0, tzinfo=UTC)
"""Past every remediation threshold of the scenarios: time-based rules have fired."""
ROLLING = {"config-update", "rolling-upgrade", "scale-out", "scale-in"}
STATES = ("ready", "ready", "ready", "stale-config", "stale-version", "down", "missing")


def _document(zk: tuple[int, int], kafka: tuple[int, int], tick: int, version: str) -> dict:
    def comp(name: str, v: str, sizes: tuple[int, int], params: dict) -> dict[str, Any]:
        zones = [{"name": z, "size": n} for z, n in zip(("phx", "slc"), sizes, strict=True)]
        return {
            "name": name,
            "version": v,
            "params": params,
            "regions": [{"name": "NA", "zones": zones}],
        }

    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "Application",
        "metadata": {"name": "app", "namespace": "ns", "generation": 1},
        "spec": {
            "replacement": {"gracePeriodSeconds": 0},
            "components": [
                comp("zookeeper1", "3.4.7", zk, {"tickTime": tick}),
                comp("kafka1", version, kafka, {}),
            ],
        },
    }


@functools.lru_cache(maxsize=256)
def _desired(
    zk: tuple[int, int], kafka: tuple[int, int], tick: int, version: str
) -> tuple[Any, ResolvedApplication, dict[tuple[str, str], list[dict]]]:
    app = application_from_data(_document(zk, kafka, tick, version))
    resolved = resolve(app, TYPES)
    desired = {
        (name, zone.name): render_zone(resolved, name, zone.name)
        for name, comp in resolved.components.items()
        for zone in comp.zones
    }
    return app, resolved, desired


zk_sizes = st.sampled_from([(1, 0), (2, 1), (3, 0), (1, 2), (3, 2), (2, 3)])
kafka_sizes = st.tuples(st.integers(1, 3), st.integers(0, 2))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Any, ResolvedApplication, dict, dict, list[RunningFlow]]:
    zk = draw(zk_sizes)
    kafka = draw(kafka_sizes)
    tick = draw(st.sampled_from([2000, 3000]))
    version = draw(st.sampled_from(["1.1.0", "2.8.1"]))
    app, resolved, desired = _desired(zk, kafka, tick, version)
    observed: dict[tuple[str, str], ZoneObservation] = {}
    for name, comp in resolved.components.items():
        if draw(st.integers(0, 4)) == 0:
            continue
        for zone in comp.zones:
            if draw(st.integers(0, 6)) == 0:
                continue
            size = max(0, zone.size + draw(st.sampled_from([0, 0, 0, -1, 1])))
            members = [
                world.Member(
                    draw(st.sampled_from(STATES)),
                    draw(st.sampled_from([world.LONG_AGO, RECENT])),
                    draw(st.integers(0, 15)) == 0,
                )
                for _ in range(size)
            ]
            observed[(name, zone.name)] = world.live_zone(
                name,
                zone.name,
                desired[(name, zone.name)],
                members,
                config_map_current=draw(st.booleans()),
            )
    running = [
        RunningFlow(f"run-{name}", "milkyway-config-update", name, "Running")
        for name in resolved.order
        if draw(st.integers(0, 5)) == 0
    ]
    return app, resolved, desired, observed, running


def _plan(app: Any, resolved: Any, desired: Any, observed: Any, running: Any) -> Plan:
    return plan(app, resolved, desired, observed, running, now=NOW, clusters={})


def _down(observed: dict, resolved: ResolvedApplication, name: str) -> int:
    down = 0
    for zone in resolved.components[name].zones:
        obs = observed.get((name, zone.name))
        ready = obs.ready_count if obs is not None else 0
        down += max(0, zone.size - ready) if obs is not None else 0
    return down


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_one_flow_per_component_within_budget_and_deterministic(scenario: tuple) -> None:
    app, resolved, desired, observed, running = scenario
    result = _plan(app, resolved, desired, observed, running)

    components = [r.component for r in result.start]
    assert len(components) == len(set(components)), "at most one flow per component"
    busy = {r.component for r in running}
    assert not busy & set(components), "nothing starts beside a flow in progress"
    for request in result.start:
        assert request.mutex == f"milkyway/ns/app/{request.component}"
        if request.params.get("members"):
            room = request.params["maxDown"] - request.params["alreadyDown"]
            assert room >= 1, (request.operation, request.reason)
            assert 1 <= request.params["parallelism"] <= room, (request.operation, room)
        if request.operation in ("config-update", "rolling-upgrade") and request.params["members"]:
            comp = resolved.components[request.component]
            budget = max_unavailable(comp.type.spec.disruption, comp.size)
            assert _down(observed, resolved, request.component) < budget
            assert request.params["maxDown"] == budget
            if comp.type.spec.disruption.kind == "quorum":
                room = budget - request.params["alreadyDown"]
                assert request.params["parallelism"] == min(room, len(request.params["members"]))
                assert {m["batch"] for m in request.params["members"]} == {"all"}
            else:
                assert {m["batch"] for m in request.params["members"]} <= {"phx", "slc"}

    again = _plan(app, resolved, desired, observed, running)
    assert again == result


def _apply_effect(
    observed: dict, desired: dict, resolved: ResolvedApplication, component: str, op: str
) -> None:
    for zone in resolved.components[component].zones:
        key = (component, zone.name)
        if op == "decommission":
            observed.pop(key, None)
        else:
            observed[key] = world.live_zone(
                component, zone.name, desired[key], [world.Member()] * zone.size
            )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.booleans())
def test_applying_the_plan_converges(scenario: tuple, deleting: bool) -> None:
    app, resolved, desired, observed, _ = scenario
    observed = dict(observed)
    done: list[RunningFlow] = []
    for _ in range(4 * len(resolved.order) + 6):
        result = plan(
            app, resolved, desired, observed, done, now=LATER, clusters={}, deleting=deleting
        )
        lost = [LostMember.model_validate(e) for e in result.status.get("lostMembers") or []]
        if lost != app.status.lost_members:
            # The operator writes the decision about a lost member before acting on it.
            status = app.status.model_copy(update={"lost_members": lost})
            app = app.model_copy(update={"status": status})
            continue
        if not result.start:
            break
        for request in result.start:
            if request.operation == "release-namespaces":
                assert deleting and observed == {}
                done.append(RunningFlow("release", request.flow, None, "Succeeded"))
                continue
            assert request.component is not None
            _apply_effect(observed, desired, resolved, request.component, request.operation)
    else:
        raise AssertionError(f"the plan kept starting flows: {[r.reason for r in result.start]}")
    assert result.start == ()
    if deleting:
        assert result.deleted and observed == {}
    else:
        assert result.waiting == (), result.waiting
        assert result.status["phase"] == "Running", result.status
        assert result.requeue_after is None

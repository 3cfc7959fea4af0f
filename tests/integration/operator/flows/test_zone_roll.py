"""Kafka rolled a whole zone at a time (disruption kind ``zone``), with the readiness
monitor asserting the policy at every transition: never brokers of two zones down at
once, never more than a zone's worth; and the same monitor catching a roll that breaks
the policy on purpose."""

from __future__ import annotations

import dataclasses

import pytest

from milkyway.kube.labels import ZONE as ZONE_LABEL
from milkyway.sim.controllers.config import ControlPlaneConfig, StageDelays
from milkyway.sim.monitor import ZoneInvariant, subscribe

from .conftest import NAMESPACE, Harness, application, component

THREE_ZONES = ("phx", "slc", "den")
SLOW_RESTARTS = ControlPlaneConfig.fast(
    delays=StageDelays(creating=0.15, ready=0.15, terminating=0.1, jitter=0.0)
)
"""Brokers take a moment to come back, so restarts begun together overlap."""

pytestmark = [
    pytest.mark.parametrize("zones", [THREE_ZONES]),
    pytest.mark.parametrize("control_plane", [SLOW_RESTARTS]),
]


async def _provisioned(harness: Harness) -> ZoneInvariant:
    harness.document = application(
        [
            component("zookeeper1", "3.4.7", dict.fromkeys(THREE_ZONES, 1)),
            component("kafka1", "1.1.0", dict.fromkeys(THREE_ZONES, 2)),
        ]
    )
    await harness.converge()
    invariant = ZoneInvariant(
        {"milkyway.ebay.com/component": "kafka1"}, ZONE_LABEL, budget=2, namespace=NAMESPACE
    )
    for name in harness.clients:
        subscribe(harness.sim[name], invariant)
    invariant.reset()
    return invariant


async def test_kafka_upgrade_takes_one_whole_zone_down_at_a_time(harness: Harness) -> None:
    invariant = await _provisioned(harness)
    harness.document["spec"]["components"][1]["version"] = "2.8.1"

    started = await harness.converge()

    (roll,) = started
    assert roll.operation == "rolling-upgrade"
    assert (roll.params["parallelism"], roll.params["maxDown"]) == (2, 2)
    assert invariant.violations == []
    assert invariant.max_zones == 1, "never brokers of two zones down at once"
    assert invariant.max_down == 2, "a zone's brokers went down together"
    pods = await harness.pods("kafka1")
    assert len(pods) == 6
    assert {p["metadata"]["labels"]["app.kubernetes.io/version"] for p in pods.values()} == {
        "2.8.1"
    }
    assert (await harness.plan()).status["phase"] == "Running"


async def test_the_monitor_catches_a_roll_that_ignores_the_zones(harness: Harness) -> None:
    """The planned roll, rewritten to restart every broker in one batch: the monitor must
    report two zones down at once and more than the budget down."""
    invariant = await _provisioned(harness)
    harness.document["spec"]["components"][1]["version"] = "2.8.1"
    (planned,) = (await harness.plan()).start
    members = [{**m, "batch": "all"} for m in planned.params["members"]]
    everything = len(members)
    broken = dataclasses.replace(
        planned,
        params={
            **planned.params,
            "members": members,
            "parallelism": everything,
            "maxDown": everything,
            "gate": {**planned.params["gate"], "maxUnavailable": everything, "oneZone": False},
        },
    )
    run = await harness.engine.submit(broken.flow, broken.params, requested_by="test")
    finished = await harness.engine.wait(run, within=90)

    assert finished.status.phase == "Succeeded", finished.status.message
    assert invariant.max_zones > 1
    assert any("zones down at once" in v for v in invariant.violations), invariant.violations
    assert any("the budget is 2" in v for v in invariant.violations), invariant.violations

"""Rolling operations: config change (restart and hot reload) and version upgrade, with
the readiness monitor proving the disruption policy held at every instant."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from milkyway.kube.labels import CONFIG_HASH
from milkyway.operator.planner import RESTART_ANNOTATION
from milkyway.operator.tasks.zone import RELOAD_ANNOTATION
from milkyway.sim.controllers.config import ControlPlaneConfig, StageDelays
from milkyway.sim.monitor import subscribe

from .conftest import NAMESPACE, Harness, application, component


def _uids(pods: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: pod["metadata"]["uid"] for name, pod in pods.items()}


async def _provisioned(harness: Harness, **zk_extra: Any) -> None:
    harness.document = application(
        [
            component("zookeeper1", "3.4.7", {"phx": 3, "slc": 2}, **zk_extra),
            component("kafka1", "1.1.0", {"phx": 2, "slc": 2}),
        ]
    )
    await harness.converge()


SLOW_RESTARTS = ControlPlaneConfig.fast(
    delays=StageDelays(creating=0.15, ready=0.15, terminating=0.1, jitter=0.0)
)
"""Members that take a moment to come back, so restarts begun together overlap (with the
instant restarts of ``fast()``, one is back before the other goes down)."""


@pytest.mark.parametrize("control_plane", [SLOW_RESTARTS])
async def test_quorum_restart_keeps_at_most_n_minus_1_over_2_down(harness: Harness) -> None:
    await _provisioned(harness)
    before = _uids(await harness.pods("zookeeper1"))
    zk = harness.tally("zookeeper1")
    zk.reset()
    harness.document["spec"]["components"][0]["params"] = {"tickTime": 3000}

    started = await harness.converge()

    assert [(r.operation, r.params.get("restart")) for r in started] == [("config-update", True)]
    assert started[0].params["maxDown"] == 2 and started[0].params["parallelism"] == 2
    after = await harness.pods("zookeeper1")
    assert set(after) == set(before)
    assert all(after[n]["metadata"]["uid"] != before[n] for n in before), "every member restarted"
    desired = started[0].params["zones"][0]["configHash"]
    assert {p["metadata"]["annotations"][CONFIG_HASH] for n, p in after.items() if "phx" in n} == {
        desired
    }
    assert zk.max_down(5) <= 2, "never more than (5-1)//2 down, across both zones"
    assert zk.max_down(5) == 2, "the budget was used: two members restarted at once"
    assert _outages_beyond_budget(zk.history, budget=2, faulted=set()) == []
    assert (await harness.plan()).start == ()


def _outages_beyond_budget(history: list[Any], budget: int, faulted: set[str]) -> list[str]:
    """Replay the monitor: every member the roll took down while ``budget`` or more were
    already down (members in ``faulted`` went down by an injected fault, not the roll)."""
    down: set[str] = set()
    wrong = []
    for t in history:
        if t.ready:
            down.discard(t.name)
            continue
        if t.name in down:
            continue
        if t.name not in faulted and len(down) >= budget:
            wrong.append(f"{t.name} went down while {sorted(down)} were down")
        down.add(t.name)
    return wrong


class _FaultWhenDown:
    """A readiness-monitor subscriber that takes ``victim`` down the moment ``count``
    other members are down at once: a failure striking while a restart is in flight."""

    def __init__(self, harness: Harness, victim: str, count: int) -> None:
        self.harness = harness
        self.victim = victim
        self.count = count
        self.down: set[str] = set()
        self.fault: asyncio.Task[Any] | None = None

    def __call__(self, t: Any) -> None:
        if t.labels.get("milkyway.ebay.com/component") != "zookeeper1":
            return
        (self.down.discard if t.ready else self.down.add)(t.name)
        if self.fault is None and len(self.down - {self.victim}) >= self.count:
            self.fault = asyncio.get_running_loop().create_task(self.strike())

    async def strike(self) -> None:
        """Down at once and kept down for a while: its replacement crash-loops."""
        faults = self.harness.control.faults
        await faults.crash_loop("slc", self.victim, namespace=NAMESPACE, duration=4.0)
        await faults.kill_pod("slc", self.victim, namespace=NAMESPACE)


def _down_after(history: list[Any], victim: str) -> list[str]:
    """The other members that went down after ``victim`` first did."""
    names: list[str] = []
    seen = False
    for t in history:
        seen = seen or (t.name == victim and not t.ready)
        if seen and not t.ready and t.name != victim and t.name not in names:
            names.append(t.name)
    return names


async def test_quorum_roll_holds_the_budget_when_a_member_fails_mid_roll(
    harness: Harness,
) -> None:
    await _provisioned(harness)
    before = _uids(await harness.pods("zookeeper1"))
    zk = harness.tally("zookeeper1")
    zk.reset()
    harness.document["spec"]["components"][0]["params"] = {"tickTime": 3000}
    trigger = _FaultWhenDown(harness, "app1-zookeeper1-slc-0", 1)
    for name in harness.clients:
        subscribe(harness.sim[name], trigger)

    started = await harness.converge()
    victim = trigger.victim

    assert trigger.fault is not None and trigger.fault.done(), "the fault was injected"

    assert started[0].params["parallelism"] == 2
    assert _outages_beyond_budget(zk.history, budget=2, faulted={victim}) == []
    assert _down_after(zk.history, victim), "the fault struck before the roll was done"
    after = await harness.pods("zookeeper1")
    assert all(after[n]["metadata"]["uid"] != before[n] for n in before), "every member restarted"
    assert all(
        "milkyway.ebay.com/disrupting-until" not in (p["metadata"].get("annotations") or {})
        for p in after.values()
    ), "no disruption claim left behind"


async def test_hot_reload_changes_config_without_restarting(harness: Harness) -> None:
    await _provisioned(harness)
    before = _uids(await harness.pods("kafka1"))
    kafka = harness.tally("kafka1")
    kafka.reset()
    harness.document["spec"]["components"][1]["params"] = {"logRetentionHours": 24}

    started = await harness.converge()

    assert [(r.operation, r.params.get("restart")) for r in started] == [("config-update", False)]
    after = await harness.pods("kafka1")
    assert _uids(after) == before, "no member restarted"
    assert kafka.max_down(4) == 0
    assert all(
        p["metadata"]["annotations"][RELOAD_ANNOTATION]
        == started[0].params["zones"][0]["configMapHash"]
        for n, p in after.items()
        if "phx" in n
    )
    for cluster, client in harness.clients.items():
        from lightkube.resources.core_v1 import ConfigMap

        cm = await client.get(ConfigMap, f"app1-kafka1-{cluster}-config", namespace="stream")
        assert "log.retention.hours=24" in "".join(cm.data.values())


async def test_rack_aware_upgrade_rolls_one_zone_at_a_time(harness: Harness) -> None:
    await _provisioned(harness)
    kafka = harness.tally("kafka1")
    kafka.reset()
    harness.document["spec"]["components"][1]["version"] = "2.8.1"

    started = await harness.converge()

    assert [r.operation for r in started] == ["rolling-upgrade"]
    after = await harness.pods("kafka1")
    assert {p["metadata"]["labels"]["app.kubernetes.io/version"] for p in after.values()} == {
        "2.8.1"
    }
    assert {p["spec"]["containers"][0]["image"] for p in after.values()} == {
        "docker.io/wurstmeister/kafka:2.13-2.8.1"
    }
    assert kafka.max_down(4) <= 1
    zones_down_together = _max_zones_down(kafka.history)
    assert zones_down_together <= 1, "never two racks down at once"
    status = (await harness.plan()).status
    assert status["components"]["kafka1"]["zones"]["phx"]["version"] == "2.8.1"
    assert status["phase"] == "Running"


def _max_zones_down(history: list[Any]) -> int:
    down: set[tuple[str, str]] = set()
    worst = 0
    for t in history:
        key = (t.labels.get("milkyway.ebay.com/zone", ""), t.name)
        (down.discard if t.ready else down.add)(key)
        worst = max(worst, len({zone for zone, _ in down}))
    return worst


async def test_requested_restart_restarts_every_member_once(harness: Harness) -> None:
    await _provisioned(harness)
    before = _uids(await harness.pods("zookeeper1"))
    zk = harness.tally("zookeeper1")
    zk.reset()
    await asyncio.sleep(1.1)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    harness.document["metadata"]["annotations"][RESTART_ANNOTATION] = f"zookeeper1@{stamp}"

    started = await harness.converge()

    assert [(r.operation, r.flow) for r in started] == [("restart", "milkyway-restart")]
    after = _uids(await harness.pods("zookeeper1"))
    assert set(after) == set(before) and all(after[n] != before[n] for n in before)
    restarts = Counter(t.name for t in zk.history if not t.alive)
    assert set(restarts.values()) == {1}
    assert zk.max_down(5) <= 2, "within the quorum budget (5-1)//2"
    assert (await harness.plan()).start == (), "the request is satisfied"

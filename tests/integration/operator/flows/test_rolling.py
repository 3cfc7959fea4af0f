"""Rolling operations: config change (restart and hot reload) and version upgrade, with
the readiness monitor proving the disruption policy held at every instant."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from milkyway.operator.planner import RESTART_ANNOTATION
from milkyway.operator.tasks.zone import RELOAD_ANNOTATION
from milkyway.render.labels import CONFIG_HASH

from .conftest import Harness, application, component


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


async def test_quorum_restart_keeps_at_most_n_minus_1_over_2_down(harness: Harness) -> None:
    await _provisioned(harness)
    before = _uids(await harness.pods("zookeeper1"))
    zk = harness.tally("zookeeper1")
    zk.reset()
    harness.document["spec"]["components"][0]["params"] = {"tickTime": 3000}

    started = await harness.converge()

    assert [(r.operation, r.params.get("restart")) for r in started] == [("config-update", True)]
    assert started[0].params["maxDown"] == 2 and started[0].params["parallelism"] == 1
    after = await harness.pods("zookeeper1")
    assert set(after) == set(before)
    assert all(after[n]["metadata"]["uid"] != before[n] for n in before), "every member restarted"
    desired = started[0].params["zones"][0]["configHash"]
    assert {p["metadata"]["annotations"][CONFIG_HASH] for n, p in after.items() if "phx" in n} == {
        desired
    }
    assert zk.max_down(5) <= 1, "one member at a time"
    assert zk.max_down(5) >= 1, "the monitor saw the restarts"
    assert (await harness.plan()).start == ()


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
    assert zk.max_down(5) <= 1
    assert (await harness.plan()).start == (), "the request is satisfied"

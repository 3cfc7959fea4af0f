"""The talk's Application (StatefulSets and Deployments, dependency order) and the
per-member Deployment pattern through a quorum-safe rolling restart."""

from __future__ import annotations

from pathlib import Path

import yaml

from .conftest import NAMESPACE, Harness, application, component

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"


async def test_the_talks_application_provisions_in_dependency_order(harness: Harness) -> None:
    document = yaml.safe_load((EXAMPLES / "stream1.yaml").read_text())
    document["metadata"]["namespace"] = NAMESPACE
    harness.document = document

    started = await harness.converge()

    order = [r.component for r in started]
    assert order.index("zookeeper1") < order.index("kafka1")
    assert order.index("zookeeper2") < order.index("flink-jobmanager")
    assert order.index("flink-jobmanager") < order.index("flink-taskmanager")
    assert set(order[:2]) == {"zookeeper1", "zookeeper2"}, "independent components in parallel"
    result = await harness.plan()
    assert result.status["phase"] == "Running"
    assert result.status["components"]["flink-taskmanager"]["zones"]["phx"]["ready"] == 3
    assert len(await harness.pods("flink-taskmanager")) == 3

    tm = harness.tally("flink-taskmanager")
    tm.reset()
    harness.document["spec"]["components"][4]["params"] = {"slots": 4}
    update = await harness.converge()
    assert [r.operation for r in update] == ["config-update"]
    pods = await harness.pods("flink-taskmanager")
    assert len(pods) == 3
    assert tm.max_down(3) <= 1, "the Deployment rolled within its maxUnavailable"


async def test_deploymentset_members_restart_one_at_a_time(harness: Harness) -> None:
    harness.document = application(
        [component("zookeeper1", "3.9.3", {"phx": 2, "slc": 1}, workload="deploymentset")]
    )
    await harness.converge()
    before = await harness.pods("zookeeper1")
    assert len(before) == 3
    zk = harness.tally("zookeeper1")
    zk.reset()
    harness.document["spec"]["components"][0]["params"] = {"tickTime": 3000}

    started = await harness.converge()

    assert [r.operation for r in started] == ["config-update"]
    after = await harness.pods("zookeeper1")
    assert len(after) == 3 and not set(after) & set(before), "every member got a new pod"
    assert {p["metadata"]["labels"]["milkyway.ebay.com/member"] for p in after.values()} == {
        "1",
        "2",
        "3",
    }
    assert zk.max_down(3) <= 1


async def test_bare_pod_members_on_local_volumes_upgrade_one_at_a_time(harness: Harness) -> None:
    zk = component("zookeeper1", "3.4.7", {"phx": 3}, workload="pods")
    zk["regions"][0]["zones"][0]["nodes"] = ["phx-node-0", "phx-node-1", "phx-node-2"]
    harness.document = application([zk])
    await harness.converge()
    tally = harness.tally("zookeeper1")
    tally.reset()
    harness.document["spec"]["components"][0]["version"] = "3.4.14"

    started = await harness.converge()

    assert [r.operation for r in started] == ["rolling-upgrade"]
    pods = await harness.pods("zookeeper1")
    assert sorted(pods) == [
        "app1-zookeeper1-phx-m1",
        "app1-zookeeper1-phx-m2",
        "app1-zookeeper1-phx-m3",
    ]
    assert {p["spec"]["nodeName"] for p in pods.values()} == {
        "phx-node-0",
        "phx-node-1",
        "phx-node-2",
    }
    assert {p["metadata"]["labels"]["app.kubernetes.io/version"] for p in pods.values()} == {
        "3.4.14"
    }
    assert tally.max_down(3) <= 1

"""Membership changes: scale out and in (within a zone and across zones), remediation of
a deleted pod, replacement of a member on request and on a failed disk."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod

from milkyway.operator.planner import REMEDIATE_AFTER_ANNOTATION, REPLACE_ANNOTATION

from .conftest import NAMESPACE, Harness, application, component


async def _claims(harness: Harness, component_name: str) -> dict[str, str]:
    found = {}
    for client in harness.clients.values():
        async for claim in client.list(
            PersistentVolumeClaim,
            namespace=NAMESPACE,
            labels={"milkyway.ebay.com/component": component_name},
        ):
            found[claim.metadata.name] = claim.metadata.uid
    return found


async def test_scale_out_across_zones_then_in(harness: Harness) -> None:
    harness.document = application([component("zookeeper1", "3.4.7", {"phx": 2, "slc": 1})])
    await harness.converge()
    zk = harness.tally("zookeeper1")
    zk.reset()
    harness.document["spec"]["components"][0]["regions"][0]["zones"][1]["size"] = 3

    started = await harness.converge()

    assert [r.operation for r in started] == ["scale-out"]
    assert [z["zone"] for z in started[0].params["grow"]] == ["slc"]
    pods = await harness.pods("zookeeper1")
    assert sorted(pods) == [
        "app1-zookeeper1-phx-0",
        "app1-zookeeper1-phx-1",
        "app1-zookeeper1-slc-0",
        "app1-zookeeper1-slc-1",
        "app1-zookeeper1-slc-2",
    ]
    hashes = {p["metadata"]["annotations"]["milkyway.ebay.com/config-hash"] for p in pods.values()}
    assert len(hashes) == 2, "one restart hash per zone, every member on it"
    assert zk.max_down(3) <= 1, "the three old members were reconfigured one at a time"
    assert harness.members["zookeeper1"].zones["slc"].ids == [3, 4, 5]

    zk.reset()
    harness.document["spec"]["components"][0]["regions"][0]["zones"][1]["size"] = 1
    started = await harness.converge()

    assert [r.operation for r in started] == ["scale-in"]
    assert [r["pod"] for r in started[0].params["shrink"][0]["removed"]] == [
        "app1-zookeeper1-slc-2",
        "app1-zookeeper1-slc-1",
    ]
    assert sorted(await harness.pods("zookeeper1")) == [
        "app1-zookeeper1-phx-0",
        "app1-zookeeper1-phx-1",
        "app1-zookeeper1-slc-0",
    ]
    assert sorted(await _claims(harness, "zookeeper1")) == [
        "data-app1-zookeeper1-phx-0",
        "data-app1-zookeeper1-phx-1",
        "data-app1-zookeeper1-slc-0",
    ]
    assert zk.min_ready == 2, "the three members left were reconfigured one at a time"
    assert (await harness.plan()).status["phase"] == "Running"


async def test_remediation_recreates_a_deleted_member_nothing_else_recreates(
    harness: Harness,
) -> None:
    harness.document = application(
        [component("zookeeper1", "3.4.7", {"phx": 3}, workload="pods")],
        **{REMEDIATE_AFTER_ANNOTATION: "30"},
    )
    harness.document["spec"]["components"][0]["regions"][0]["zones"][0]["nodes"] = [
        "phx-node-0",
        "phx-node-1",
        "phx-node-2",
    ]
    await harness.converge()
    pods = await harness.pods("zookeeper1")
    victim = sorted(pods)[0]
    await harness.clients["phx"].delete(Pod, victim, namespace=NAMESPACE, grace_period=0)

    right_away = await harness.plan()
    assert [r.operation for r in right_away.start] == ["remediate"]
    assert victim in right_away.start[0].reason

    started = await harness.converge()
    assert [r.operation for r in started] == ["remediate"]
    assert sorted(await harness.pods("zookeeper1")) == sorted(pods)
    assert (await harness.plan()).status["phase"] == "Running"

    claims = await _claims(harness, "zookeeper1")
    await asyncio.sleep(1.1)
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    harness.document["metadata"]["annotations"][REPLACE_ANNOTATION] = f"{victim}@{at}"
    started = await harness.converge()
    assert [r.operation for r in started] == ["replace-member"]
    claim = f"{victim}-data"
    assert (await _claims(harness, "zookeeper1"))[claim] != claims[claim], "a new claim"
    assert (await harness.plan()).status["phase"] == "Running"


async def test_not_ready_member_waits_for_the_threshold(harness: Harness) -> None:
    harness.document = application([component("zookeeper1", "3.4.7", {"phx": 3})])
    await harness.converge()
    pod = "app1-zookeeper1-phx-1"
    await harness.control.faults.crash_loop("phx", pod, namespace=NAMESPACE)
    await harness.eventually_down(pod)

    soon = await harness.plan()
    assert soon.start == ()
    assert soon.requeue_after is not None and 0 < soon.requeue_after <= 60
    assert soon.status["phase"] == "Degraded"
    later = await harness.plan(now=datetime.now(UTC) + timedelta(seconds=61))
    assert [r.operation for r in later.start] == ["remediate"]
    assert later.start[0].params["alreadyDown"] == 0


async def test_replace_on_request_and_on_failed_disk_gets_a_new_volume(harness: Harness) -> None:
    harness.document = application([component("zookeeper1", "3.4.7", {"phx": 3})])
    await harness.converge()
    claims = await _claims(harness, "zookeeper1")
    pods = await harness.pods("zookeeper1")
    target = "app1-zookeeper1-phx-2"
    await asyncio.sleep(1.1)
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    harness.document["metadata"]["annotations"][REPLACE_ANNOTATION] = f"{target}@{at}"
    zk = harness.tally("zookeeper1")
    zk.reset()

    started = await harness.converge()

    assert [r.operation for r in started] == ["replace-member"]
    after_claims = await _claims(harness, "zookeeper1")
    assert after_claims[f"data-{target}"] != claims[f"data-{target}"], "a new volume"
    assert {k: v for k, v in after_claims.items() if k != f"data-{target}"} == {
        k: v for k, v in claims.items() if k != f"data-{target}"
    }
    after = await harness.pods("zookeeper1")
    assert after[target]["metadata"]["uid"] != pods[target]["metadata"]["uid"]
    assert zk.max_down(3) <= 1

    claim = await harness.clients["phx"].get(
        PersistentVolumeClaim, "data-app1-zookeeper1-phx-0", namespace=NAMESPACE
    )
    await harness.control.faults.fail_disk("phx", volume=claim.spec.volumeName)
    started = await harness.converge()
    assert [r.operation for r in started] == ["replace-member"]
    assert "disk failed" in started[0].reason
    final = await _claims(harness, "zookeeper1")
    assert final["data-app1-zookeeper1-phx-0"] != after_claims["data-app1-zookeeper1-phx-0"]
    assert (await harness.plan()).status["phase"] == "Running"


async def test_member_on_a_lost_node_with_a_local_volume_is_replaced(harness: Harness) -> None:
    harness.document = application(
        [component("zookeeper1", "3.4.7", {"phx": 3}, storage={"storageClass": "local"})]
    )
    await harness.converge()
    pods = await harness.pods("zookeeper1")
    victim = "app1-zookeeper1-phx-1"
    lost = pods[victim]["spec"]["nodeName"]
    claims = await _claims(harness, "zookeeper1")
    zk = harness.tally("zookeeper1")
    zk.reset()
    await harness.control.faults.lose_node("phx", lost)
    await harness.eventually_down(victim)

    started = await harness.converge(rounds=40)

    assert "replace-member" in [r.operation for r in started]
    after = await harness.pods("zookeeper1")
    assert after[victim]["spec"]["nodeName"] != lost
    assert (await _claims(harness, "zookeeper1"))[f"data-{victim}"] != claims[f"data-{victim}"]
    assert zk.max_down(3) <= 1
    assert (await harness.plan()).status["phase"] == "Running"


async def test_kafka_grows_in_a_zone_gains_a_zone_then_shrinks(harness: Harness) -> None:
    harness.document = application(
        [
            component("zookeeper1", "3.4.7", {"phx": 1}),
            component("kafka1", "1.1.0", {"phx": 2}),
        ]
    )
    await harness.converge()
    kafka = harness.document["spec"]["components"][1]
    kafka["regions"][0]["zones"][0]["size"] = 3
    kafka["regions"][0]["zones"].append({"name": "slc", "size": 2})

    started = await harness.converge()

    assert [r.operation for r in started] == ["scale-out"]
    assert [z["zone"] for z in started[0].params["grow"]] == ["phx", "slc"]
    assert sorted(await harness.pods("kafka1")) == [
        "app1-kafka1-phx-0",
        "app1-kafka1-phx-1",
        "app1-kafka1-phx-2",
        "app1-kafka1-slc-0",
        "app1-kafka1-slc-1",
    ]
    assert harness.members["kafka1"].zones["slc"].ids == [4, 5]

    tally = harness.tally("kafka1")
    tally.reset()
    kafka["regions"][0]["zones"][0]["size"] = 1
    started = await harness.converge()
    assert [r.operation for r in started] == ["scale-in"]
    assert sorted(await harness.pods("kafka1")) == [
        "app1-kafka1-phx-0",
        "app1-kafka1-slc-0",
        "app1-kafka1-slc-1",
    ]
    assert sorted(await _claims(harness, "kafka1")) == [
        "data-app1-kafka1-phx-0",
        "data-app1-kafka1-slc-0",
        "data-app1-kafka1-slc-1",
    ]
    assert tally.min_ready is not None and tally.min_ready >= 1
    assert (await harness.plan()).status["phase"] == "Running"

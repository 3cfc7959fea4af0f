"""The health rules, from pods as the API shows them to findings and triggers."""

from __future__ import annotations

from typing import Any

from milkyway.operator.health.checks import ZonePods, evaluate, pod_problem
from milkyway.operator.health.targets import ZoneTarget

NOW = "2026-01-01T00:00:10Z"
EARLIER = "2026-01-01T00:00:00Z"


def target(component: str, zone: str, size: int, quorum: str = "quorum") -> ZoneTarget:
    return ZoneTarget(
        component=component,
        type="zookeeper" if quorum == "quorum" else "kafka",
        quorum=quorum,
        zone=zone,
        cluster=f"c-{zone}",
        namespace="ns",
        selector={"app": component},
        desired=size,
        version="3.8.4",
        config_hash="h1",
        members=tuple(f"{component}-{zone}-{i}" for i in range(size)),
        workload="statefulset",
    )


def pod(name: str, ready: bool = True, version: str = "3.8.4", reason: str = "") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "restartCount": 4 if reason else 0}
    if reason:
        container["state"] = {"waiting": {"reason": reason}}
    return {
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/version": version},
            "annotations": {"milkyway.ebay.com/config-hash": "h1"},
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [container],
        },
    }


def zk(
    phx: list[dict[str, Any]], slc: list[dict[str, Any]], ams: list[dict[str, Any]]
) -> list[ZonePods]:
    return [
        ZonePods(target("zk", "phx", 1), phx),
        ZonePods(target("zk", "slc", 1), slc),
        ZonePods(target("zk", "ams", 1), ams),
    ]


CHECKS = ("members", "quorum")


def test_every_member_ready_and_updated_is_healthy_and_no_news() -> None:
    report, trigger = evaluate(
        zk([pod("zk-phx-0")], [pod("zk-slc-0")], [pod("zk-ams-0")]), CHECKS, None, NOW
    )
    assert report["status"] == "Healthy" and report["findings"] == []
    assert trigger is None
    assert report["components"]["zk"]["zones"]["phx"] == {
        "status": "Healthy",
        "ready": 1,
        "desired": 1,
    }


def test_a_member_down_with_quorum_kept_is_degraded() -> None:
    previous = {"status": "Healthy", "since": EARLIER, "transitions": 0}
    report, trigger = evaluate(
        zk(
            [pod("zk-phx-0", False, reason="CrashLoopBackOff")],
            [pod("zk-slc-0")],
            [pod("zk-ams-0")],
        ),
        CHECKS,
        previous,
        NOW,
    )
    assert report["status"] == "Degraded" and trigger == "health-degraded"
    assert report["transitions"] == 1
    assert report["findings"] == [
        {
            "component": "zk",
            "zone": "phx",
            "member": "zk-phx-0",
            "check": "member-ready",
            "severity": "Degraded",
            "observed": "CrashLoopBackOff (restarts 4)",
            "since": NOW,
        }
    ]


def test_quorum_lost_across_zones_is_unhealthy_and_names_the_count() -> None:
    previous = {"status": "Degraded", "since": EARLIER, "transitions": 1}
    down = pod("zk-slc-0", False)
    report, trigger = evaluate(
        zk([pod("zk-phx-0", False)], [down], [pod("zk-ams-0")]), CHECKS, previous, NOW
    )
    assert report["status"] == "Unhealthy" and trigger == "health-unhealthy"
    quorum = [f for f in report["findings"] if f["check"] == "quorum"]
    assert quorum[0]["observed"] == "1/3 members Ready across all zones, need 2"
    assert quorum[0]["zone"] == "" and quorum[0]["member"] == ""
    assert report["components"]["zk"]["status"] == "Unhealthy"
    assert report["components"]["zk"]["zones"]["ams"]["status"] == "Healthy"


def test_a_finding_keeps_its_since_and_recovery_fires_once() -> None:
    reads = zk([pod("zk-phx-0", False)], [pod("zk-slc-0")], [pod("zk-ams-0")])
    first, _ = evaluate(reads, CHECKS, {"status": "Healthy", "since": EARLIER}, EARLIER)
    second, again = evaluate(reads, CHECKS, first, NOW)
    assert again is None
    assert second["findings"][0]["since"] == EARLIER and second["since"] == EARLIER
    healthy = zk([pod("zk-phx-0")], [pod("zk-slc-0")], [pod("zk-ams-0")])
    recovered, trigger = evaluate(healthy, CHECKS, second, NOW)
    assert trigger == "health-recovered" and recovered["transitions"] == 2
    steady, none = evaluate(healthy, CHECKS, recovered, NOW)
    assert none is None and steady["transitions"] == 2
    assert [h["status"] for h in steady["history"]] == [
        "Healthy",
        "Healthy",
        "Degraded",
        "Degraded",
    ]


def test_a_stale_or_missing_member_is_degraded() -> None:
    report, _ = evaluate(
        zk([pod("zk-phx-0", version="3.4.7")], [], [pod("zk-ams-0")]), ("members",), None, NOW
    )
    checks = {(f["member"], f["check"]): f["observed"] for f in report["findings"]}
    assert checks[("zk-phx-0", "member-updated")] == "version 3.4.7 (want 3.8.4)"
    assert checks[("zk-slc-0", "member-missing")] == "no pod"
    assert report["status"] == "Degraded"


def test_kafka_needs_every_broker_and_none_ready_is_unhealthy() -> None:
    brokers = [
        ZonePods(
            target("kafka", "phx", 2, "rackAware"), [pod("kafka-phx-0"), pod("kafka-phx-1", False)]
        )
    ]
    report, _ = evaluate(brokers, ("quorum",), None, NOW)
    assert [(f["check"], f["observed"]) for f in report["findings"]] == [
        ("brokers", "1/2 brokers Ready")
    ]
    none = [ZonePods(target("kafka", "phx", 2, "rackAware"), [pod("kafka-phx-0", False)])]
    report, _ = evaluate(none, ("quorum",), None, NOW)
    assert report["status"] == "Unhealthy"


def test_an_unreadable_zone_is_a_finding_not_a_failure() -> None:
    reads = [ZonePods(target("zk", "phx", 1), error="cluster c-phx unreachable: ConnectError")]
    report, _ = evaluate(reads, CHECKS, None, NOW)
    assert report["findings"][0]["check"] == "zone-readable"
    assert report["status"] == "Unhealthy"  # nothing Ready: no quorum either


def test_while_provisioning_the_health_is_unknown_and_its_end_is_no_news() -> None:
    reads = zk([], [], [])
    settling, trigger = evaluate(reads, CHECKS, None, EARLIER, settling=True)
    assert settling["status"] == "Unknown" and trigger is None and settling["findings"]
    healthy = zk([pod("zk-phx-0")], [pod("zk-slc-0")], [pod("zk-ams-0")])
    _, trigger = evaluate(healthy, CHECKS, settling, NOW)
    assert trigger is None


def test_the_history_is_bounded() -> None:
    healthy = zk([pod("zk-phx-0")], [pod("zk-slc-0")], [pod("zk-ams-0")])
    report: dict[str, Any] | None = None
    for _ in range(7):
        report, _ = evaluate(healthy, CHECKS, report, NOW, history=3)
    assert report is not None and len(report["history"]) == 3


def test_pod_problem_reads_like_kubectl() -> None:
    assert pod_problem(pod("p")) == ""
    assert pod_problem(pod("p", False)) == "Running, not Ready"
    terminating = pod("p")
    terminating["metadata"]["deletionTimestamp"] = NOW
    assert pod_problem(terminating) == "Terminating"

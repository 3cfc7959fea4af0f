"""Jobs run pods to completion (or fail them), CronJobs start Jobs on schedule, DaemonSets
put one pod on every qualifying node, ReplicationControllers keep their replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.polling import eventually

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.controllers.completion import EXIT_CODE, RUN_SECONDS
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.controllers.manager import start_control_plane

from .conftest import Sim, make_sim

JOBS = "batch/v1/jobs"


def job(name: str, *, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    template_md: dict[str, Any] = {"labels": {"app": name}}
    if annotations:
        template_md["annotations"] = annotations
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            **spec,
            "template": {
                "metadata": template_md,
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36"}],
                },
            },
        },
    }


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_ and cond["status"] == "True":
            return cond
    return None


def job_pods(sim: Sim, name: str) -> list[dict[str, Any]]:
    return [
        p
        for p in sim.plane.pods.objects.values()
        if p["metadata"]["labels"].get("batch.kubernetes.io/job-name") == name
    ]


def current(sim: Sim, resource: str, name: str) -> dict[str, Any]:
    return sim.api.get(resource, name, namespace="default")


async def test_job_runs_completions_with_parallelism(sim: Sim) -> None:
    created = sim.api.create(job("batch", completions=3, parallelism=2))
    assert created["spec"]["backoffLimit"] == 6
    uid = created["metadata"]["uid"]
    assert created["spec"]["selector"] == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": uid}
    }
    done = await eventually(
        lambda: condition(current(sim, JOBS, "batch"), "Complete"), what="Job Complete"
    )
    assert done["reason"] == "CompletionsReached"
    finished = current(sim, JOBS, "batch")
    assert finished["status"]["succeeded"] == 3
    assert finished["status"]["active"] == 0
    assert finished["status"]["completionTime"]
    pods = job_pods(sim, "batch")
    assert len(pods) == 3
    assert {p["status"]["phase"] for p in pods} == {"Succeeded"}
    state = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["exitCode"] == 0 and state["reason"] == "Completed"


async def test_failing_pods_are_retried_until_the_backoff_limit(sim: Sim) -> None:
    sim.api.create(job("broken", backoffLimit=2, annotations={EXIT_CODE: "3"}))
    failed = await eventually(
        lambda: condition(current(sim, JOBS, "broken"), "Failed"), what="Job Failed"
    )
    assert failed["reason"] == "BackoffLimitExceeded"
    assert current(sim, JOBS, "broken")["status"]["failed"] == 3
    pods = job_pods(sim, "broken")
    assert len(pods) == 3
    assert {p["status"]["phase"] for p in pods} == {"Failed"}
    assert sim.events("broken", "BackoffLimitExceeded")


async def test_active_deadline_fails_the_job_and_stops_its_pods(sim: Sim) -> None:
    sim.api.create(job("slow", activeDeadlineSeconds=1, annotations={RUN_SECONDS: "600"}))
    failed = await eventually(
        lambda: condition(current(sim, JOBS, "slow"), "Failed"), what="deadline", within=20
    )
    assert failed["reason"] == "DeadlineExceeded"
    await eventually(
        lambda: (
            all(p["metadata"].get("deletionTimestamp") for p in job_pods(sim, "slow"))
            or not job_pods(sim, "slow")
        ),
        what="the running pod to be deleted",
    )


async def test_finished_job_is_deleted_after_its_ttl(sim: Sim) -> None:
    sim.api.create(job("brief", ttlSecondsAfterFinished=0))
    await eventually(lambda: not sim.plane.get(JOBS, "default", "brief"), what="TTL deletion")
    await eventually(lambda: not job_pods(sim, "brief"), what="its pods collected")


@pytest.fixture
async def clocked() -> AsyncIterator[tuple[Sim, list[datetime]]]:
    """A cluster whose clock the test moves: schedules fire without waiting minutes."""
    moment = [datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)]
    api = ClusterAPI(name="test", clock=lambda: moment[0])
    plane = start_control_plane(api, 2, ControlPlaneConfig.fast())
    try:
        yield make_sim(api, plane), moment
    finally:
        await plane.stop()


async def test_cronjob_starts_a_job_per_schedule_and_keeps_history(
    clocked: tuple[Sim, list[datetime]],
) -> None:
    sim, moment = clocked
    template = job("unused")["spec"]
    sim.api.create(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "tick", "namespace": "default"},
            "spec": {
                "schedule": "*/5 * * * *",
                "successfulJobsHistoryLimit": 1,
                "jobTemplate": {"spec": template},
            },
        }
    )
    await sim.plane.settle()
    assert not sim.api.list(JOBS, namespace="default")["items"]
    for step in range(2):
        moment[0] += timedelta(minutes=5)
        sim.plane.enqueue("cronjob", ("default", "tick"))
        expected = datetime(2026, 3, 1, 12, 5 * (step + 1), tzinfo=UTC)
        name = f"tick-{int(expected.timestamp()) // 60}"
        await eventually(
            lambda name=name: (
                condition(current(sim, JOBS, name), "Complete")
                if sim.plane.get(JOBS, "default", name)
                else None
            ),
            what=f"job {name} complete",
        )
    cron = current(sim, "batch/v1/cronjobs", "tick")
    assert cron["status"]["lastScheduleTime"] == "2026-03-01T12:10:00Z"
    await eventually(
        lambda: (
            [j["metadata"]["name"] for j in sim.api.list(JOBS, namespace="default")["items"]]
            == [name]
        ),
        what="history trimmed to one successful job",
    )


def daemonset(image: str = "agent:1", **pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "main", "image": image}], **pod_spec},
            },
        },
    }


def agent_pods(sim: Sim) -> list[dict[str, Any]]:
    return [
        p
        for p in sim.plane.pods.objects.values()
        if p["metadata"]["labels"].get("app") == "agent"
        and not p["metadata"].get("deletionTimestamp")
    ]


async def test_daemonset_runs_one_pod_per_node_and_rolls_updates(sim: Sim) -> None:
    nodes = [n["metadata"]["name"] for n in sim.api.list("v1/nodes")["items"]]
    sim.api.create(daemonset())

    def ready(image: str) -> bool:
        ds = current(sim, "apps/v1/daemonsets", "agent")
        status = ds.get("status") or {}
        pods = agent_pods(sim)
        return (
            status.get("numberReady") == len(nodes)
            and status.get("updatedNumberScheduled") == len(nodes)
            and len(pods) == len(nodes)
            and all(p["spec"]["containers"][0]["image"] == image for p in pods)
        )

    await eventually(lambda: ready("agent:1"), what="one ready pod per node")
    assert sorted(p["spec"]["nodeName"] for p in agent_pods(sim)) == sorted(nodes)
    tolerations = agent_pods(sim)[0]["spec"]["tolerations"]
    assert {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
    } in (tolerations)
    sim.api.patch(
        "apps/v1/daemonsets",
        "agent",
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "agent:2"}]}}}},
        namespace="default",
    )
    await eventually(lambda: ready("agent:2"), what="rolling update to agent:2")


async def test_daemonset_follows_node_selector_and_taints(sim: Sim) -> None:
    nodes = sorted(n["metadata"]["name"] for n in sim.api.list("v1/nodes")["items"])
    sim.api.patch("v1/nodes", nodes[0], {"metadata": {"labels": {"disk": "ssd"}}})
    sim.api.patch("v1/nodes", nodes[1], {"metadata": {"labels": {"disk": "ssd"}}})
    sim.api.patch(
        "v1/nodes",
        nodes[1],
        {"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}},
    )
    sim.api.create(daemonset(nodeSelector={"disk": "ssd"}))
    await eventually(
        lambda: [p["spec"].get("nodeName") for p in agent_pods(sim)] == [nodes[0]],
        what="a pod on the one labelled, untainted node",
    )
    sim.api.patch("v1/nodes", nodes[1], {"spec": {"taints": None}})
    await eventually(
        lambda: sorted(p["spec"].get("nodeName") or "" for p in agent_pods(sim)) == nodes[:2],
        what="a pod on the node whose taint went",
    )
    sim.api.patch("v1/nodes", nodes[0], {"metadata": {"labels": {"disk": None}}})
    await eventually(
        lambda: [p["spec"].get("nodeName") for p in agent_pods(sim)] == [nodes[1]],
        what="the pod leaves the node that lost its label",
    )


async def test_replicationcontroller_keeps_its_replicas(sim: Sim) -> None:
    rc = sim.api.create(
        {
            "apiVersion": "v1",
            "kind": "ReplicationController",
            "metadata": {"name": "legacy", "namespace": "default"},
            "spec": {
                "replicas": 2,
                "template": {
                    "metadata": {"labels": {"app": "legacy"}},
                    "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
                },
            },
        }
    )
    assert rc["spec"]["selector"] == {"app": "legacy"}
    assert rc["metadata"]["labels"] == {"app": "legacy"}

    def live() -> list[dict[str, Any]]:
        return [
            p
            for p in sim.plane.pods.objects.values()
            if p["metadata"]["labels"].get("app") == "legacy"
            and not p["metadata"].get("deletionTimestamp")
        ]

    await eventually(
        lambda: (
            (current(sim, "v1/replicationcontrollers", "legacy").get("status") or {}).get(
                "readyReplicas"
            )
            == 2
        ),
        what="two ready replicas",
    )
    assert live()[0]["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"
    sim.api.patch("v1/replicationcontrollers", "legacy", {"spec": {"replicas": 1}})
    await eventually(lambda: len(live()) == 1, what="scale down to one")

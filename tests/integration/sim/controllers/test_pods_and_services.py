"""Kubelet stages, readiness gates, image pull failures, graceful deletion, logs,
Endpoints/EndpointSlices and PodDisruptionBudgets with the eviction subresource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.polling import eventually

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.controllers.config import ControlPlaneConfig, StageDelays, tag_allowlist
from milkyway.sim.controllers.manager import start_control_plane
from milkyway.sim.controllers.objects import is_pod_ready, pod_condition

from .conftest import Sim, make_sim


def pod(name: str, image: str = "nginx:1.27", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "containers": [
                {"name": "main", "image": image, "ports": [{"name": "http", "containerPort": 8080}]}
            ],
            **spec,
        },
    }


def _ready(sim: Sim, name: str) -> bool:
    p = sim.pod(name)
    return bool(p) and is_pod_ready(p)  # type: ignore[arg-type]


async def test_running_pod_has_ip_container_status_and_log(sim: Sim) -> None:
    sim.api.create(pod("p"))
    await eventually(lambda: _ready(sim, "p"))
    status = sim.pod("p")["status"]  # type: ignore[index]
    assert status["phase"] == "Running" and status["podIP"] and status["hostIP"]
    (container,) = status["containerStatuses"]
    assert container["image"] == "nginx:1.27"
    assert container["ready"] and container["started"] and container["restartCount"] == 0
    assert "running" in container["state"]
    assert "started from image nginx:1.27" in sim.api.read_log("p", namespace="default")


async def test_readiness_gate_holds_ready_until_its_condition_is_true(sim: Sim) -> None:
    sim.api.create(pod("gated", readinessGates=[{"conditionType": "example.com/in-sync"}]))
    await eventually(lambda: (sim.pod("gated") or {}).get("status", {}).get("phase") == "Running")
    await sim.plane.settle()
    ready = pod_condition(sim.pod("gated"), "Ready")  # type: ignore[arg-type]
    assert ready is not None and ready["status"] == "False"
    assert ready["reason"] == "ReadinessGatesNotReady"
    current = sim.pod("gated")["status"]["conditions"]  # type: ignore[index]
    sim.api.patch(
        "pods",
        "gated",
        {"status": {"conditions": [*current, {"type": "example.com/in-sync", "status": "True"}]}},
        namespace="default",
        subresource="status",
    )
    await eventually(lambda: _ready(sim, "gated"), what="ready once the gate is true")


@pytest.fixture
async def strict_images() -> AsyncIterator[Sim]:
    api = ClusterAPI(name="test")
    config = ControlPlaneConfig.fast(
        image_pull_fails=tag_allowlist({"nginx": {"1.27"}}),
        delays=StageDelays(terminating=0.3),
    )
    plane = start_control_plane(api, 2, config)
    try:
        yield make_sim(api, plane)
    finally:
        await plane.stop()


async def test_unknown_image_tag_fails_to_pull(strict_images: Sim) -> None:
    sim = strict_images
    sim.api.create(pod("bad", image="nginx:9.99"))

    def reason() -> str:
        statuses = (sim.pod("bad") or {}).get("status", {}).get("containerStatuses") or []
        return statuses[0]["state"].get("waiting", {}).get("reason", "") if statuses else ""

    await eventually(lambda: reason() == "ErrImagePull")
    await eventually(lambda: reason() == "ImagePullBackOff")
    assert sim.pod("bad")["status"]["phase"] == "Pending"  # type: ignore[index]
    assert any("nginx:9.99" in e["message"] for e in sim.events("bad", "Failed"))


async def test_graceful_deletion_keeps_pod_terminating_then_removes_it(strict_images: Sim) -> None:
    sim = strict_images
    sim.api.create(pod("g", terminationGracePeriodSeconds=30))
    await eventually(lambda: _ready(sim, "g"))
    sim.api.delete("pods", "g", namespace="default")
    terminating = sim.pod("g")
    assert terminating is not None and terminating["metadata"]["deletionTimestamp"]
    await eventually(lambda: sim.pod("g") is None, what="kubelet finishing the deletion")
    assert sim.events("g", "Killing")


async def test_endpoints_list_ready_pods_and_not_ready_ones_apart(sim: Sim) -> None:
    sim.api.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
        }
    )
    sim.api.create(pod("a"))
    sim.api.create(pod("b", readinessGates=[{"conditionType": "example.com/never"}]))
    await eventually(lambda: _ready(sim, "a"))
    await sim.plane.settle()
    endpoints = sim.api.get("endpoints", "web", namespace="default")
    (subset,) = endpoints["subsets"]
    assert [a["targetRef"]["name"] for a in subset["addresses"]] == ["a"]
    assert [a["targetRef"]["name"] for a in subset["notReadyAddresses"]] == ["b"]
    assert subset["ports"][0]["port"] == 8080
    (endpoint_slice,) = sim.api.list(
        "discovery.k8s.io/v1/endpointslices", label_selector="kubernetes.io/service-name=web"
    )["items"]
    assert {
        e["targetRef"]["name"]: e["conditions"]["ready"] for e in endpoint_slice["endpoints"]
    } == {"a": True, "b": False}
    sim.api.delete("pods", "a", namespace="default", grace_period_seconds=0)
    await eventually(
        lambda: (
            not sim.api.get("endpoints", "web", namespace="default")["subsets"][0].get("addresses")
        ),
        what="deleted pod removed from endpoints",
    )


async def test_eviction_refused_with_429_when_budget_allows_no_disruption(sim: Sim) -> None:
    for name in ("m-0", "m-1", "m-2"):
        sim.api.create(pod(name))
    sim.api.create(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "quorum", "namespace": "default"},
            "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}},
        }
    )
    await eventually(lambda: all(_ready(sim, n) for n in ("m-0", "m-1", "m-2")))
    await sim.plane.settle()
    pdb = sim.api.get("policy/v1/poddisruptionbudgets", "quorum", namespace="default")
    assert pdb["status"]["disruptionsAllowed"] == 0 and pdb["status"]["currentHealthy"] == 3
    before = sim.api.get("pods", "m-1", namespace="default")
    with pytest.raises(ApiError) as refused:
        sim.api.evict("m-1", {"apiVersion": "policy/v1", "kind": "Eviction"}, namespace="default")
    assert refused.value.code == 429
    assert "disruption budget" in refused.value.message
    after = sim.api.get("pods", "m-1", namespace="default")
    assert after == before

    sim.api.patch(
        "policy/v1/poddisruptionbudgets",
        "quorum",
        {"spec": {"minAvailable": 2}},
        namespace="default",
    )
    await eventually(
        lambda: (
            sim.api.get("policy/v1/poddisruptionbudgets", "quorum", namespace="default")["status"][
                "disruptionsAllowed"
            ]
            == 1
        )
    )
    sim.api.evict("m-1", {"apiVersion": "policy/v1", "kind": "Eviction"}, namespace="default")
    with pytest.raises(ApiError) as second:
        sim.api.evict("m-2", {"apiVersion": "policy/v1", "kind": "Eviction"}, namespace="default")
    assert second.value.code == 429


async def test_monitor_iterator_reports_a_pod_becoming_ready_then_going(sim: Sim) -> None:
    from milkyway.sim.monitor import transitions

    stream = transitions(sim.api)
    sim.api.create(pod("watched"))
    seen = []
    async for t in stream:
        if t.name == "watched":
            seen.append((t.ready, t.alive))
            if t.ready:
                break
    sim.api.delete("pods", "watched", namespace="default", grace_period_seconds=0)
    async for t in stream:
        if t.name == "watched":
            seen.append((t.ready, t.alive))
            break
    await stream.aclose()
    assert seen[0] == (False, True) and (True, True) in seen and seen[-1] == (False, False)
    assert t.cluster == "test" and t.labels == {"app": "web"}

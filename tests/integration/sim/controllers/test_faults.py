"""Pod, node and disk faults through the Python API: each is visible in the API objects
(status, conditions, events) and clears when lifted."""

from __future__ import annotations

from typing import Any

import pytest
from tests.polling import eventually

from milkyway.sim.controllers.objects import is_pod_ready

from .conftest import Sim, sts_manifest


def _container(sim: Sim, name: str) -> dict[str, Any]:
    statuses = (sim.pod(name) or {}).get("status", {}).get("containerStatuses") or [{}]
    return statuses[0]


def _ready(sim: Sim, name: str) -> bool:
    p = sim.pod(name)
    return bool(p) and is_pod_ready(p)  # type: ignore[arg-type]


@pytest.fixture
async def web(sim: Sim) -> Sim:
    sim.api.create(sts_manifest(replicas=2))
    await eventually(lambda: _ready(sim, "web-0") and _ready(sim, "web-1"), what="web ready")
    return sim


async def test_crash_container_bumps_restart_count_and_recovers(web: Sim) -> None:
    await web.faults.crash_container("test", "web-0", down_for=0.3)
    assert not _ready(web, "web-0")
    container = _container(web, "web-0")
    assert container["restartCount"] == 1
    assert container["lastState"]["terminated"]["exitCode"] == 1
    await eventually(lambda: _ready(web, "web-0"), what="ready again after the crash")
    assert "exited with code 1" in web.api.read_log("web-0", namespace="default", previous=True)


async def test_crash_loop_shows_backoff_until_lifted(web: Sim) -> None:
    fault = await web.faults.crash_loop("test", "web-1")
    await eventually(
        lambda: (
            _container(web, "web-1").get("restartCount", 0) >= 2
            and _container(web, "web-1")["state"].get("waiting", {}).get("reason")
            == "CrashLoopBackOff"
        ),
        what="crash loop",
    )
    assert not _ready(web, "web-1")
    assert web.events("web-1", "BackOff")
    await web.faults.lift(fault.id)
    await eventually(lambda: _ready(web, "web-1"), what="ready after lifting the crash loop")
    assert "running" in _container(web, "web-1")["state"]


async def test_kill_pod_removes_it_and_the_statefulset_replaces_it(web: Sim) -> None:
    uid = web.pod("web-1")["metadata"]["uid"]  # type: ignore[index]
    await web.faults.kill_pod("test", "web-1")
    await eventually(
        lambda: _ready(web, "web-1") and web.pod("web-1")["metadata"]["uid"] != uid,  # type: ignore[index]
        what="replacement pod ready",
    )


async def test_slow_node_sets_condition_and_clears_it(web: Sim) -> None:
    node = web.pod("web-0")["spec"]["nodeName"]  # type: ignore[index]
    fault = await web.faults.slow_node("test", node, factor=4)
    conditions = {c["type"]: c for c in web.api.get("nodes", node)["status"]["conditions"]}
    assert conditions["KubeletSlow"]["status"] == "True"
    assert web.events(node, "NodeSlow")
    await web.faults.lift(fault.id)
    conditions = {c["type"]: c for c in web.api.get("nodes", node)["status"]["conditions"]}
    assert "KubeletSlow" not in conditions
    assert conditions["Ready"]["status"] == "True"


async def test_failed_disk_fails_the_pod_and_blocks_its_replacement_until_lifted(web: Sim) -> None:
    claim = web.api.get("persistentvolumeclaims", "data-web-0", namespace="default")
    volume = claim["spec"]["volumeName"]
    fault = await web.faults.fail_disk("test", volume=volume)
    assert web.api.get("persistentvolumes", volume)["status"]["phase"] == "Failed"
    assert web.events(volume, "VolumeFailed")
    await eventually(
        lambda: any("disk failure" in e["message"] for e in web.events("web-0", "FailedMount")),
        what="the replacement pod cannot mount the failed disk",
    )
    assert web.events("web-0", "DiskFailure")
    assert not _ready(web, "web-0")
    await web.faults.lift(fault.id)
    await eventually(lambda: _ready(web, "web-0"), what="ready once the disk is back")
    assert web.api.get("persistentvolumes", volume)["status"]["phase"] == "Bound"


async def test_unknown_fault_and_bad_targets_are_refused_with_the_fix(sim: Sim) -> None:
    with pytest.raises(ValueError, match="choose one of"):
        await sim.faults.inject("melt-down", "test")
    with pytest.raises(ValueError, match="not a simulated node"):
        await sim.faults.lose_node("test", "nope")
    with pytest.raises(ValueError, match="not simulated here"):
        await sim.faults.lose_node("other", "test-node-0")
    assert sim.faults.active() == []

"""FlowRuns stay small: every built-in lifecycle flow run over the example Applications
ends with a status under 20 KB as stored (the operator's wire form), because manifests
travel as render-snapshot references and the engine forgets what succeeded steps no
longer need."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from milkyway.model.flow import FlowRun
from milkyway.operator.planner import RESTART_ANNOTATION

from .conftest import NAMESPACE, Harness

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"
LIMIT = 20 * 1024
MULTI_REGION = ("phx", "slc", "ams")


def stored_status_bytes(run: FlowRun) -> int:
    """The run's status as the Kubernetes store writes it: defaults and nulls left out."""
    status = run.status.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude_defaults=True
    )
    return len(orjson.dumps(status))


def example(name: str) -> dict[str, Any]:
    document = yaml.safe_load((EXAMPLES / name).read_text())
    document["metadata"]["namespace"] = NAMESPACE
    for component in document["spec"]["components"]:
        # Fit the simulated clusters (four 8-CPU nodes each, the standard and local
        # storage classes): default profiles and storage. What the flows carry is the same.
        component.pop("config", None)
        component.pop("resources", None)
        component.pop("storage", None)
    return document


async def _sizes(harness: Harness) -> dict[str, int]:
    """The largest stored status per flow of every run so far, all of them Succeeded."""
    sizes: dict[str, int] = {}
    for request, name in harness.runs:
        run = await harness.engine.store.get(name)
        assert run.status.phase == "Succeeded", (request.flow, run.status.message)
        sizes[request.flow] = max(sizes.get(request.flow, 0), stored_status_bytes(run))
    return sizes


async def _lifecycle(harness: Harness, kafka: int, zookeeper: int) -> dict[str, int]:
    """Provision, restart Kafka by a config change, upgrade ZooKeeper, scale Kafka out and
    in, restart it on request, then delete everything."""
    await harness.converge()
    components = harness.document["spec"]["components"]
    components[kafka].setdefault("params", {})["heapMb"] = 1536
    await harness.converge()
    components[zookeeper]["version"] = "3.9.3"
    await harness.converge()
    first_zone = components[kafka]["regions"][0]["zones"][0]
    first_zone["size"] += 1
    await harness.converge()
    first_zone["size"] -= 1
    await harness.converge()
    await asyncio.sleep(1.1)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = components[kafka]["name"]
    harness.document["metadata"].setdefault("annotations", {})[RESTART_ANNOTATION] = (
        f"{name}@{stamp}"
    )
    await harness.converge()
    await harness.converge(deleting=True)
    return await _sizes(harness)


def _check(sizes: dict[str, int]) -> None:
    expected = {
        "milkyway-provision",
        "milkyway-config-update",
        "milkyway-rolling-upgrade",
        "milkyway-scale-out",
        "milkyway-scale-in",
        "milkyway-restart",
        "milkyway-decommission",
    }
    assert expected <= set(sizes), sorted(sizes)
    over = {flow: size for flow, size in sizes.items() if size > LIMIT}
    assert not over, f"FlowRun statuses over {LIMIT} bytes: {over} (all: {sizes})"


async def test_stream1_flow_runs_stay_under_20_kb(harness: Harness) -> None:
    harness.document = example("stream1.yaml")
    _check(await _lifecycle(harness, kafka=1, zookeeper=0))


@pytest.mark.parametrize("zones", [MULTI_REGION])
async def test_multi_region_flow_runs_stay_under_20_kb(harness: Harness) -> None:
    harness.document = example("multi-region.yaml")
    _check(await _lifecycle(harness, kafka=1, zookeeper=0))


async def test_runs_with_manifests_inline_still_finish(harness: Harness) -> None:
    """Runs an operator started before render snapshots carry their manifests inline;
    the tasks of this one apply them as they are."""
    harness.document = example("stream1.yaml")
    await harness.converge()
    harness.document["spec"]["components"][1]["params"] = {"heapMb": 1536}
    (request,) = (await harness.plan()).start
    assert isinstance(request.params["zones"][0]["manifests"], list)

    run = await harness.engine.submit(request.flow, request.params, requested_by="test")
    finished = await harness.engine.wait(run, within=90)

    assert finished.status.phase == "Succeeded", finished.status.message
    assert (await harness.plan()).start == (), "the change is applied"

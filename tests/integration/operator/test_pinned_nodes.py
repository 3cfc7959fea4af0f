"""A zone that pins members to nodes its cluster does not have gets a warning condition
naming them, instead of pods Pending without a word."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ensure_namespace
from .test_lifecycle import condition

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "local-pods.yaml"
NAMESPACE = "pinned"


async def test_pinned_nodes_missing_from_the_cluster_are_reported(world: Any) -> None:
    document = yaml.safe_load(EXAMPLE.read_text())
    document["metadata"]["namespace"] = NAMESPACE
    zone = document["spec"]["components"][0]["regions"][0]["zones"][0]
    zone["nodes"] = ["na-phx-1-node-0", "gone-node", "na-phx-1-node-2"]
    await ensure_namespace(world.mgmt, NAMESPACE)
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(document)

        async def reported() -> dict[str, Any]:
            app = await world.application(NAMESPACE, "meta")
            return condition(app, "NodesPinned")

        warning = await world.eventually(reported, within=60, what="NodesPinned reported")
    assert warning["status"] == "False" and warning["reason"] == "UnknownNodes", warning
    assert "gone-node" in warning["message"] and "na-phx-1" in warning["message"]
    assert "na-phx-1-node-0" not in warning["message"].split("include:")[0]

"""``milkyway rotate-secret`` against a simulated management cluster (no operator): what
it refuses, naming the problem and writing nothing, and the FlowRun it creates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from milkyway.components import builtin_component_types
from milkyway.kube.resources import CLUSTER, COMPONENT_TYPE, FLOWRUN

from .conftest import Mgmt

STREAM1 = Path(__file__).parents[3] / "examples" / "stream1.yaml"


def _zookeeper_type() -> dict[str, Any]:
    data = builtin_component_types()["zookeeper"].model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    agent = data["spec"].setdefault("agent", {})
    agent.setdefault("actions", []).append({"name": "reload-auth", "command": ["true"]})
    agent["secrets"] = [
        {"name": "auth", "path": "/etc/zk-auth", "reloadAction": "reload-auth", "generate": {}},
        {"name": "tls", "path": "/etc/tls", "reloadAction": "reload-auth"},
    ]
    return data


async def _runs(mgmt: Mgmt) -> list[dict[str, Any]]:
    return [r.to_dict() async for r in mgmt.client.list(FLOWRUN, namespace="milkyway")]


async def _rotate(mgmt: Mgmt, component: str, secret: str) -> Any:
    return await mgmt.cli(
        "rotate-secret", "stream1", "--component", component, "--secret", secret, "-n", "milkyway"
    )


async def test_refusals_name_the_problem_and_write_nothing(mgmt: Mgmt) -> None:
    assert (await mgmt.cli("apply", "-f", str(STREAM1))).exit_code == 0
    await mgmt.client.create(COMPONENT_TYPE.from_dict(_zookeeper_type()))
    cases = [
        ("kafka9", "auth", "no component 'kafka9'"),
        ("zookeeper1", "nope", "generated secrets: auth"),
        ("zookeeper1", "tls", "declares no generated secret of that name"),
        ("kafka1", "auth", "generated secrets: none"),
        ("zookeeper1", "auth", "zone phx of zookeeper1 has no Cluster"),
    ]
    for component, secret, said in cases:
        result = await _rotate(mgmt, component, secret)
        assert result.exit_code == 1, result.output
        assert said in " ".join(result.output.split()), result.output
        assert "nothing was changed" in result.output
    assert await _runs(mgmt) == []


async def test_creates_a_rotation_run_under_the_components_lock(mgmt: Mgmt) -> None:
    assert (await mgmt.cli("apply", "-f", str(STREAM1))).exit_code == 0
    await mgmt.client.create(COMPONENT_TYPE.from_dict(_zookeeper_type()))
    await mgmt.client.create(
        CLUSTER.from_dict(
            {
                "apiVersion": "milkyway.ebay.com/v1",
                "kind": "Cluster",
                "metadata": {"name": "na-phx"},
                "spec": {
                    "region": "NA",
                    "zone": "phx",
                    "kubeconfigSecretRef": {"name": "na-phx", "namespace": "milkyway"},
                },
            }
        )
    )
    result = await _rotate(mgmt, "zookeeper1", "auth")
    assert result.exit_code == 0, result.output
    (run,) = await _runs(mgmt)
    assert run["metadata"]["name"] in result.output
    assert run["metadata"]["labels"]["milkyway.ebay.com/component"] == "zookeeper1"
    assert run["metadata"]["ownerReferences"][0]["name"] == "stream1"
    params = run["spec"]["params"]
    assert params["secret"] == "stream1-zookeeper1-auth"
    assert params["source"] == {"cluster": "na-phx", "namespace": "milkyway"}
    assert [z["cluster"] for z in params["zones"]] == ["na-phx"]
    assert run["status"]["holds"] == ["1:milkyway/milkyway/stream1/zookeeper1"], (
        "the run must hold the component's lock"
    )

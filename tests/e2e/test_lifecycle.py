"""Decommission and bad input end to end."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from lightkube import ApiError

from milkyway.cli.app_commands import apply_documents
from milkyway.kube.resources import APPLICATION
from milkyway.model.errors import ValidationFailed

from .conftest import World

pytestmark = pytest.mark.slow  # whole-system runs: the fast group leaves them out

NS, APP = "day2", "small"
SMALL = (Path(__file__).parent / "small.yaml").read_text()


async def test_decommission_leaves_nothing_in_any_cluster(world: World) -> None:
    await world.apply(SMALL)
    await world.wait_ready(NS, APP, within=120)
    for member in world.members:
        assert await world.owned(member.name, NS, APP), member.name
    await world.client.delete(APPLICATION, APP, namespace=NS)

    async def gone() -> bool:
        try:
            await world.client.get(APPLICATION, APP, namespace=NS)
        except ApiError as exc:
            return exc.status.code == 404
        return False

    await world.wait_for(gone, "the Application to be decommissioned", within=90)
    for member in world.members:
        assert await world.owned(member.name, NS, APP) == [], member.name


async def test_bad_input_is_rejected_by_kubectl_and_milkyway_and_changes_nothing(
    world: World, tmp_path: Path
) -> None:
    await world.apply(SMALL)
    await world.wait_ready(NS, APP, within=120)
    before = await world.app(NS, APP)
    bad = SMALL.replace("{name: ams, size: 1}", "{name: ams, size: -1}")
    path = tmp_path / "bad.yaml"
    path.write_text(bad)

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not on PATH: install kubectl 1.32 (Debian: kubernetes-client)")
    proc = await asyncio.create_subprocess_exec(
        kubectl,
        f"--kubeconfig={world.kubeconfig}",
        "--context=mgmt",
        f"--cache-dir={tmp_path / 'cache'}",
        "apply",
        "-f",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0
    message = err.decode()
    assert "spec.components[0].regions[1].zones[0].size" in message and "-1" in message

    with pytest.raises(ValidationFailed) as caught:
        await apply_documents(world.client, bad, "default")
    (error,) = caught.value.errors
    assert error.path == "spec.components[0].regions[1].zones[0].size"
    assert error.value == -1 and error.fix

    await asyncio.sleep(1)
    after = await world.app(NS, APP)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["status"]["components"] == before["status"]["components"]
    assert len(await world.pods("eu-ams", NS, {"milkyway.ebay.com/application": APP})) == 3

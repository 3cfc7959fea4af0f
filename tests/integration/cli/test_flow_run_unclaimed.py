"""``milkyway flow run`` with no engine to drive the run: the CLI says so, and so does the
run's status, instead of a silent Pending."""

from __future__ import annotations

from milkyway.flows.kube_store import KubeStore
from milkyway.kube.resources import FLOW

from .conftest import Mgmt

HELLO = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "Flow",
    "metadata": {"name": "hello", "namespace": "default"},
    "spec": {
        "version": "1",
        "steps": [{"name": "nap", "action": "sleep", "params": {"seconds": 0.1}}],
    },
}


async def test_a_run_nobody_drives_says_so(mgmt: Mgmt) -> None:
    await mgmt.client.create(FLOW.from_dict(HELLO), namespace="default")
    result = await mgmt.cli("flow", "run", "hello", "--name", "lonely")
    assert result.exit_code == 0, result.output
    assert "flowrun/lonely created" in result.output
    assert "no flow engine claimed it" in " ".join(result.output.split()), result.output
    run = await KubeStore(mgmt.client, "default").get("lonely")
    assert run.status.phase == "Pending"
    assert "milkyway flow engine -n default" in run.status.message


async def test_without_user_the_requester_is_the_kubeconfig_user(mgmt: Mgmt) -> None:
    import asyncio

    import yaml
    from typer.testing import CliRunner

    from milkyway.cli.main import app

    await mgmt.client.create(FLOW.from_dict(HELLO), namespace="default")
    config = yaml.safe_load(mgmt.sim.kubeconfig_path.read_text())
    (context,) = [c for c in config["contexts"] if c["name"] == "mgmt"]
    user = context["context"]["user"]
    argv = ["flow", "run", "hello", "--name", "whose", "--local"]
    argv += [f"--kubeconfig={mgmt.sim.kubeconfig_path}", "--context=mgmt"]
    result = await asyncio.to_thread(CliRunner().invoke, app, argv, env={"USER": ""})
    assert result.exit_code == 0, result.output
    run = await KubeStore(mgmt.client, "default").get("whose")
    assert run.spec.requested_by == user != "unknown"

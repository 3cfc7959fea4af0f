"""Against a real ``milkyway sim up`` process: faults injected with ``milkyway sim fault``
show up through kubectl and clear when lifted.

Node loss is left to ``test_kubectl_and_cli.py`` (same CLI and admin endpoint, shorter
node grace period): ``sim up`` keeps Kubernetes' 40 s grace before a silent node turns
NotReady.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.polling import eventually

from milkyway.sim.controllers.admin import admin_file

from .conftest import ClusterCli, sts_manifest


@pytest.fixture
async def sim_up(tmp_path: Path) -> AsyncIterator[ClusterCli]:
    up = ClusterCli(tmp_path / "kubeconfig", tmp_path / "cache")
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "milkyway.cli.main",
        "sim",
        "up",
        "--clusters",
        "east",
        "--nodes",
        "2",
        "--kubeconfig",
        str(up.kubeconfig),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        for _ in range(300):
            if admin_file(up.kubeconfig).exists() or proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
        if not admin_file(up.kubeconfig).exists():
            err = await proc.stderr.read() if proc.stderr else b""  # type: ignore[union-attr]
            pytest.fail(f"milkyway sim up did not start its control plane: {err.decode()}")
        yield up
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    assert not admin_file(up.kubeconfig).exists(), "the admin file outlived the simulator"


async def test_faults_against_a_running_sim_up(sim_up: ClusterCli) -> None:
    manifest = json.dumps(sts_manifest(replicas=2)).encode()
    await sim_up.output("apply", "-f", "-", stdin=manifest)
    out = await sim_up.output("rollout", "status", "statefulset/web", "--timeout=60s")
    assert "roll out complete" in out

    await sim_up.fault("crash-container", "web-0", "--cluster", "east", "--down-for", "0.5")
    restarts = await sim_up.output(
        "get", "pod", "web-0", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"
    )
    assert restarts == "1"

    volume = await sim_up.output("get", "pvc", "data-web-1", "-o", "jsonpath={.spec.volumeName}")
    fault = (await sim_up.fault("fail-disk", "--cluster", "east", "--volume", volume)).split()[0]
    assert await sim_up.output("get", "pv", volume, "-o", "jsonpath={.status.phase}") == "Failed"

    async def failed_mount() -> bool:
        reasons = await sim_up.output(
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=web-1",
            "-o",
            "jsonpath={.items[*].reason}",
        )
        return "DiskFailure" in reasons.split()

    await eventually(failed_mount, what="DiskFailure on web-1")
    await sim_up.fault("lift", fault)
    await sim_up.output("wait", "--for=condition=Ready", "pod/web-1", "--timeout=30s")

    node = await sim_up.output("get", "pod", "web-0", "-o", "jsonpath={.spec.nodeName}")
    fault = (await sim_up.fault("slow-node", node, "--cluster", "east")).split()[0]
    slow = '{.status.conditions[?(@.type=="KubeletSlow")].message}'
    assert "5x longer" in await sim_up.output("get", "node", node, "-o", f"jsonpath={slow}")
    await sim_up.fault("lift", fault)
    assert await sim_up.output("get", "node", node, "-o", f"jsonpath={slow}") == ""

    fault = (await sim_up.fault("cut-off", "--cluster", "east")).split()[0]
    _, _, err = await sim_up.kubectl("get", "pods", check=False)
    assert "refused" in err  # "connection refused" or "The connection … was refused"
    await sim_up.fault("lift", fault)
    assert "web-0" in await sim_up.output("get", "pods")

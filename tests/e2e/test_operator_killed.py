"""The operator process killed with SIGKILL in the middle of a rolling upgrade: a new
process resumes the FlowRun and finishes it, and no member is restarted more often than
the engine's at-least-once step retry allows (the step in flight may run once more)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from milkyway.cli.app_commands import upgrade_edit

from .conftest import APP_LABEL, COMPONENT_LABEL, World, track

pytestmark = pytest.mark.slow  # whole-system runs: the fast group leaves them out

NS, APP = "day2", "small"
SMALL = (Path(__file__).parent / "small.yaml").read_text()


async def _operator(world: World, log: Path) -> asyncio.subprocess.Process:
    """``milkyway operator run`` in its own process against the management cluster."""
    out = log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "milkyway.cli.main",
            "operator",
            "run",
            f"--kubeconfig={world.kubeconfig}",
            "--context=mgmt",
            "--no-leader-election",
            "--heartbeat=0.5",
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        out.close()


async def test_operator_killed_mid_upgrade_is_resumed_by_a_new_process(
    clusters: World, tmp_path: Path
) -> None:
    world = clusters
    log = tmp_path / "operator.log"
    first = await _operator(world, log)
    second: asyncio.subprocess.Process | None = None
    try:
        await world.apply(SMALL)
        await world.wait_ready(NS, APP, within=120)
        zk = track(world, {APP_LABEL: APP, COMPONENT_LABEL: "zookeeper"})
        zk.start()
        await world.edit(NS, APP, upgrade_edit("zookeeper", "3.9.3", None))
        await world.wait_for(lambda: bool(zk.deletions), "the upgrade to restart a member")
        first.send_signal(signal.SIGKILL)
        await first.wait()
        runs = await world.unfinished_runs(NS, APP)
        assert runs, "the upgrade finished before the operator was killed"
        killed_run = runs[0]["metadata"]["name"]

        second = await _operator(world, log)
        obj = await world.wait_ready(NS, APP, within=150)
        done = {r["metadata"]["name"]: r for r in await world.runs(NS, APP)}
        assert done[killed_run]["status"]["phase"] == "Succeeded", log.read_text()[-3000:]
        for zone in ("phx", "slc", "ams"):
            assert obj["status"]["components"]["zookeeper"]["zones"][zone]["version"] == "3.9.3"
        assert zk.max_down <= 1
        assert len(zk.deletions) == 3
        assert max(zk.deletions.values()) <= 2
        assert sum(zk.deletions.values()) <= 4
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()

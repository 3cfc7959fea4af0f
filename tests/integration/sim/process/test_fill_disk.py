"""``fill-disk``: a real file written into a process-backed pod's size-limited volume, so
the pod's own processes see the volume full (``df``, ENOSPC); lifting empties it again.
Without sized volumes the fault is refused rather than filling the machine's disk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.process import ImageMap, parse_run
from milkyway.sim.process.container import group_members
from milkyway.sim.process.sandbox import enter_argv

from .conftest import SHELL_IMAGE, ProcessSim, eventually, shell_pod


@pytest.fixture
async def sized_sim(tmp_path: Path) -> AsyncIterator[ProcessSim]:
    images = ImageMap([parse_run(f"{SHELL_IMAGE}=sh -c")])
    started: set[int] = set()
    async with (
        SimulatedClusters(["east"], kubeconfig_path=tmp_path / "kubeconfig") as sim,
        ControlledClusters(
            sim,
            nodes=1,
            config=ControlPlaneConfig.fast(crash_backoff=0.5),
            images=images,
            state_dir=tmp_path / "state",
            sized_volumes=True,
        ) as ctl,
    ):
        try:
            yield ProcessSim(sim, ctl)
        finally:
            for runtime in ctl.runtimes.values():
                started |= runtime.started_groups
    leftovers = {g: group_members(g) for g in started if group_members(g)}
    assert not leftovers, f"processes left running after the simulator stopped: {leftovers}"


def _claim_and_pod(sim: ProcessSim, size: str) -> None:
    api = sim.api()
    api.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "disk", "namespace": "default"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}},
            },
        }
    )
    api.create(
        shell_pod(
            "holder",
            "exec sleep 300",
            container={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "disk"}}],
        )
    )


async def _in_pod(sim: ProcessSim, script: str) -> tuple[int, str]:
    handle = sim.runtime().container("default", "holder")
    assert handle is not None and handle.pid is not None
    process = await asyncio.create_subprocess_exec(
        *enter_argv(handle.pid),
        "sh",
        "-c",
        script,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


def _df(output: str) -> tuple[int, int]:
    """(size, used) in KiB from ``df -Pk`` output."""
    fields = output.strip().splitlines()[-1].split()
    return int(fields[1]), int(fields[2])


async def test_fill_disk_fills_the_volume_the_pod_sees(sized_sim: ProcessSim) -> None:
    _claim_and_pod(sized_sim, "16Mi")
    await eventually(lambda: sized_sim.status("holder").get("ready"), what="Ready")
    code, out = await _in_pod(sized_sim, "df -Pk /data")
    assert code == 0, out
    size, used = _df(out)
    assert size == 16 * 1024 and used < size * 0.1

    fault = await sized_sim.ctl.faults.fill_disk("east", "holder", percent=95)
    assert fault.params["bytes"] > 14 * 1024 * 1024
    _, out = await _in_pod(sized_sim, "df -Pk /data")
    size, used = _df(out)
    assert used >= size * 0.95
    code, out = await _in_pod(sized_sim, "head -c 4194304 /dev/zero > /data/more")
    assert code != 0 and "No space left" in out

    await sized_sim.ctl.faults.lift(fault.id)
    await _in_pod(sized_sim, "rm -f /data/more")
    _, out = await _in_pod(sized_sim, "df -Pk /data")
    assert _df(out)[1] < size * 0.1


async def test_fill_disk_needs_sized_volumes(process_sim: ProcessSim) -> None:
    _claim_and_pod(process_sim, "16Mi")
    await eventually(lambda: process_sim.status("holder").get("ready"), what="Ready")
    with pytest.raises(ValueError, match="sized volumes"):
        await process_sim.ctl.faults.fill_disk("east", "holder")
    with pytest.raises(ValueError, match="percent"):
        await process_sim.ctl.faults.inject("fill-disk", "east", pod="holder", percent=0)

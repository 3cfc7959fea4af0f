"""``milkyway sim up --run``: a mapped image runs as a process, and stopping the simulator
with SIGTERM ends it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from tests.polling import eventually

from milkyway.sim.controllers.admin import admin_file

from ..controllers.conftest import ClusterCli


def processes_with(variable: str) -> list[int]:
    """Processes whose environment holds ``variable`` (NAME=value) exactly."""
    wanted = variable.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if wanted in env and state != "Z":
            found.append(int(entry))
    return found


async def test_sim_up_runs_mapped_images_and_ends_them_on_sigterm(tmp_path: Path) -> None:
    cli = ClusterCli(tmp_path / "kubeconfig", tmp_path / "cache")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "milkyway.cli.main",
        "sim",
        "up",
        "--clusters",
        "east",
        "--nodes",
        "1",
        "--kubeconfig",
        str(cli.kubeconfig),
        "--run",
        "example.com/sleeper:*=sleep 600",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    try:
        admin = admin_file(cli.kubeconfig)
        await eventually(lambda: _exists(admin), what="sim up to start", within=60)
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "sleeper"},
            "spec": {"containers": [{"name": "main", "image": "example.com/sleeper:1"}]},
        }
        await cli.kubectl("apply", "-f", "-", stdin=json.dumps(pod).encode())

        async def running() -> bool:
            ip = await cli.jsonpath("pod", "sleeper", "{.status.podIP}")
            return ip.startswith("127.") and bool(processes_with(f"MILKYWAY_POD_IP={ip}"))

        await eventually(running, what="the sleeper's process", within=60)
        ip = await cli.jsonpath("pod", "sleeper", "{.status.podIP}")
        assert processes_with(f"MILKYWAY_POD_IP={ip}")
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        assert processes_with(f"MILKYWAY_POD_IP={ip}") == []
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(path.exists)


async def test_sim_up_refuses_a_bad_run_mapping_before_starting(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "milkyway.cli.main",
        "sim",
        "up",
        "--clusters",
        "east",
        "--kubeconfig",
        str(tmp_path / "kubeconfig"),
        "--run",
        "redis-server",
        "--exit-after",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(tmp_path), "COLUMNS": "200"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "write IMAGE_PATTERN=COMMAND" in err.decode()
    assert b"cluster east" not in out

"""The agent's etcd check against a real etcd: healthy with its member list, then down."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from pathlib import Path

from milkyway.agent.checks import run_check
from milkyway.model.agent_spec import AgentCheck

from .zookeeper_ensemble import free_loopback_block


async def test_etcd_check_reads_health_and_members(tmp_path: Path) -> None:
    etcd = shutil.which("etcd")
    assert etcd, "a real etcd is needed: apt-get install -y etcd-server (make bootstrap does)"
    address = free_loopback_block(1)[0]
    process = _start(
        [
            etcd,
            "--name",
            "a",
            "--data-dir",
            str(tmp_path / "data"),
            "--listen-client-urls",
            f"http://{address}:2379",
            "--advertise-client-urls",
            f"http://{address}:2379",
            "--listen-peer-urls",
            f"http://{address}:2380",
            "--initial-advertise-peer-urls",
            f"http://{address}:2380",
            "--initial-cluster",
            f"a=http://{address}:2380",
        ],
    )
    check = AgentCheck(name="etcd", kind="etcd", port=2379, timeoutSeconds=2)
    try:
        async with asyncio.timeout(60):
            while True:
                result = await run_check(check, address)
                if result.ok:
                    break
                await asyncio.sleep(0.3)
        assert result.observed == {"health": "true", "members": 1}
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    down = await run_check(check, address)
    assert not down.ok and "Connect" in down.message


def _start(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )

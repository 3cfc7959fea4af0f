"""``milkyway demo --exit-when-ready``: the script-friendly demo, as a user runs it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # whole-system runs: the fast group leaves them out


async def test_demo_exits_zero_once_everything_is_ready(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "milkyway.cli.main",
        "demo",
        "--exit-when-ready",
        "--fast",
        "--timeout",
        "150",
        f"--kubeconfig={kubeconfig}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "160"},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 200)
    text = out.decode()
    assert proc.returncode == 0, text[-4000:]
    assert "everything is Ready" in text
    assert "application/milkyway/stream1 created" in text
    assert "application/streaming/orders created" in text
    assert "Real processes" in text
    assert "orders-zookeeper-ams-0" in text and "config-store-etcd-phx-0" in text
    assert "pods simulated (images: flink, kafka, milkyway)" in text


async def test_demo_times_out_with_the_reason(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "milkyway.cli.main",
        "demo",
        "--exit-when-ready",
        "--fast",
        "--timeout",
        "1",
        "--nodes",
        "1",
        f"--kubeconfig={tmp_path / 'kubeconfig'}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "160"},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode()
    assert proc.returncode == 1, text[-4000:]
    assert "not Ready after 1s" in text, text[-4000:]
    assert "milkyway/stream1" in text and "streaming/orders" in text, text[-4000:]

"""A running demo owns its directory and its Applications: a second demo in the same
directory is refused (naming the first), and an operator started against the demo's
clusters stands by behind the demo's own, which holds the leader Lease."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MILKYWAY = (sys.executable, "-m", "milkyway.cli.main")


async def _start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *MILKYWAY,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )


async def _read_until(process: asyncio.subprocess.Process, text: str, within: float) -> str:
    assert process.stdout is not None
    seen = []
    async with asyncio.timeout(within):
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise AssertionError(f"exited before {text!r}:\n{''.join(seen)}")
            seen.append(line)
            if text in line:
                return "".join(seen)


async def _stop(process: asyncio.subprocess.Process) -> str:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
    try:
        async with asyncio.timeout(60):
            out, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return out.decode()


async def test_a_second_demo_is_refused_and_a_second_operator_stands_by(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    first = await _start("demo", "--fast", "--timeout", "300", f"--kubeconfig={kubeconfig}")
    try:
        await _read_until(first, "registered", 180)
        written = kubeconfig.read_text()

        second = await _start("demo", "--fast", f"--kubeconfig={kubeconfig}")
        try:
            async with asyncio.timeout(60):
                out, _ = await second.communicate()
        finally:
            text = await _stop(second) if second.returncode is None else ""
        text += out.decode()
        assert second.returncode == 1, text
        assert f"pid {first.pid}" in text and str(tmp_path) in text, text
        assert kubeconfig.read_text() == written, "the first demo's kubeconfig is untouched"

        operator = await _start(
            "operator",
            "run",
            f"--kubeconfig={kubeconfig}",
            "--context=mgmt",
            "--identity=beside-the-demo",
        )
        try:
            log = await _read_until(operator, "campaigning for lease", 60)
            await asyncio.sleep(8.0)
        finally:
            log += await _stop(operator)
        assert "is leader" not in log, log
    finally:
        await _stop(first)
    assert not (tmp_path / "demo.pid").exists(), "the demo releases its directory on exit"

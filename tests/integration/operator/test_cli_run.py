"""``milkyway operator run`` as its own process: it leads, provisions, and on SIGTERM
releases its Lease so that a standby could take over at once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from lightkube.resources.coordination_v1 import Lease

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


async def test_operator_run_leads_provisions_and_releases_its_lease_on_sigterm(
    world: Any, tmp_path: Path
) -> None:
    heap_report = tmp_path / "heap.txt"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "milkyway.cli.main",
        "operator",
        "run",
        f"--kubeconfig={world.sim.kubeconfig_path}",
        "--context=mgmt",
        "--identity=cli-op",
        "--heartbeat=0.5",
        f"--heap-profile={heap_report}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:

        async def holder() -> str | None:
            try:
                lease = await world.mgmt.get(
                    Lease, "milkyway-operator", namespace="milkyway-system"
                )
            except Exception:
                return None
            return lease.spec.holderIdentity if lease.spec else None

        await world.eventually(lambda: holder(), within=30, what="the Lease taken")
        assert await holder() == "cli-op"
        await world.apply_application(EXAMPLES / "stream1.yaml")

        async def running() -> bool:
            app = await world.application("milkyway", "stream1")
            return (app.get("status") or {}).get("phase") == "Running"

        await world.eventually(running, within=120, what="stream1 Running")
        # SIGUSR1 asks for the heap report: by type and by cache, the pods' included.
        proc.send_signal(signal.SIGUSR1)

        async def reported() -> bool:
            return heap_report.exists()

        await world.eventually(reported, within=60, what="the heap report written")
        report = heap_report.read_text()
        assert report.startswith("live Python objects: ")
        assert "builtins.dict" in report
        assert "member caches: Pod" in report
        assert "Application cache" in report
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    log = out.decode()
    assert proc.returncode == 0, log
    assert "cli-op is leader" in log
    assert "started milkyway-provision" in log
    assert await holder() is None

"""While the management cluster is cut off, the operator says so once and once again
when it is back: every loop that fails meanwhile (informers, lease renewals, flow
engines' scans, reconciles, Cluster status writes) reports to one place per cluster, not
with a traceback per attempt."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from .conftest import MANAGEMENT, World

pytestmark = pytest.mark.slow

SMALL = (Path(__file__).parent / "small.yaml").read_text()


async def test_a_cut_off_management_cluster_is_one_warning_each_way(
    clusters: World, caplog: pytest.LogCaptureFixture
) -> None:
    world = clusters
    await world.start_operator(leader_election=True)
    await world.apply(SMALL)
    await asyncio.sleep(2)
    caplog.set_level(logging.INFO)
    caplog.clear()
    fault = await world.control.faults.cut_off(MANAGEMENT)
    await asyncio.sleep(12)
    await world.control.faults.lift(fault.id)
    await world.wait_ready("day2", "small", within=120)

    def said_back() -> bool:
        return any(
            r.getMessage() == f"cluster {MANAGEMENT} reachable again" for r in caplog.records
        )

    # Ready comes from the caches; the informers say so once their next list succeeds.
    await world.wait_for(said_back, "the operator saying the cluster is back", within=90)

    ours = [r for r in caplog.records if r.name.startswith("milkyway")]
    assert not [r for r in ours if r.exc_info or r.levelno >= logging.ERROR], [
        (r.name, r.getMessage()) for r in ours if r.exc_info or r.levelno >= logging.ERROR
    ]
    warnings = [r.getMessage() for r in ours if r.levelno == logging.WARNING]
    down = [m for m in warnings if m.startswith(f"cluster {MANAGEMENT} unreachable")]
    back = [m for m in warnings if m == f"cluster {MANAGEMENT} reachable again"]
    assert (len(down), len(back)) == (1, 1), warnings
    # Besides those two, at most the lost lease and the campaign that follows.
    assert len(warnings) <= 4, warnings

"""The example flow in docs/flows.md works when copied: it plans and runs."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from typer.testing import CliRunner

from milkyway.cli.main import app
from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import Engine
from milkyway.flows.store import MemoryStore

DOC = Path(__file__).resolve().parents[3] / "docs" / "flows.md"


def _example() -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert blocks, "docs/flows.md has no yaml example"
    return blocks[0]


def test_example_dry_runs(tmp_path: Path) -> None:
    path = tmp_path / "announce.yaml"
    path.write_text(_example())
    result = CliRunner().invoke(app, ["flow", "dry-run", "announce-and-roll", "-f", str(path)])
    assert result.exit_code == 0, result.output
    assert "roll: forEach 3 x task sleep" in result.output
    assert "batch 1 (canary)" in result.output
    assert "approvers: bob, group:sre" in result.output


async def test_example_runs_with_an_approval() -> None:
    store = MemoryStore()
    async with Engine(store, Catalog(load_flows(_example())), poll_interval=0.02) as engine:
        name = await engine.submit("announce-and-roll", target="stream1/zk", requested_by="alice")
        for _ in range(200):
            run = await store.get(name)
            if run.status.nodes.get("confirm") and run.status.nodes["confirm"].phase == "Waiting":
                break
            await asyncio.sleep(0.01)
        await engine.request(
            name, "approve", "carol", groups=["sre"], step="confirm", reason="window open"
        )
        run = await engine.wait(name, 20)
    assert run.status.phase == "Succeeded", run.status.message
    assert run.status.nodes["roll"].batches == [[0], [2], [1]]
    assert run.status.nodes["report"].phase == "Succeeded"
    assert run.status.nodes["finally.tidy"].phase == "Succeeded"

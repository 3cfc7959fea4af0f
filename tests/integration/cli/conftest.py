"""A management cluster with Milkyway's CRDs, and the ``milkyway`` CLI run against it.

The CLI calls ``asyncio.run`` itself, while the simulated API server lives on the test's
event loop; so each invocation runs in a worker thread (its own loop, real HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lightkube import AsyncClient, KubeConfig, codecs
from rich.console import Console
from typer.testing import CliRunner

from milkyway.cli import app_commands
from milkyway.cli.main import app
from milkyway.model.crds import all_crds
from milkyway.sim.clusters import SimulatedClusters


@dataclass
class CliResult:
    exit_code: int
    output: str


@dataclass
class Mgmt:
    sim: SimulatedClusters
    client: AsyncClient

    async def cli(self, *args: str, stdin: str | None = None) -> CliResult:
        """``milkyway ARGS --kubeconfig … --context mgmt`` with stdout and stderr together."""
        runner = CliRunner()
        app_commands.console = Console(width=200)
        argv = [*args, f"--kubeconfig={self.sim.kubeconfig_path}", "--context=mgmt"]
        result = await asyncio.to_thread(
            runner.invoke, app, argv, input=stdin, env={"COLUMNS": "200"}
        )
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result.exit_code, result.output)


@pytest.fixture
async def mgmt(tmp_path: Path) -> AsyncIterator[Mgmt]:
    async with SimulatedClusters(["mgmt"], kubeconfig_path=tmp_path / "kubeconfig") as sim:
        client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get("mgmt"))
        for crd in all_crds():
            await client.create(codecs.from_dict(crd))
        try:
            yield Mgmt(sim, client)
        finally:
            await client.close()

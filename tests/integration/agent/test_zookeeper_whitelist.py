"""A ZooKeeper whose four-letter-word whitelist holds only its default (``srvr``) is
still read correctly: the mode from ``srvr``, no failure for the words it refuses."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from milkyway.agent.checks import run_check
from milkyway.model.agent_spec import AgentCheck

from .zookeeper_ensemble import CLIENT_PORT, ZooKeeperEnsemble, wait_serving

pytestmark = pytest.mark.slow


async def test_default_whitelist_still_gives_the_mode(tmp_path: Path) -> None:
    with ZooKeeperEnsemble(tmp_path, 1, whitelist="srvr") as ensemble:
        server = ensemble.servers[0]
        await wait_serving(server.address, word="srvr")
        check = AgentCheck(name="zookeeper", kind="zookeeper", port=CLIENT_PORT)
        result = await run_check(check, server.address)
        assert result.ok, result
        assert result.observed["mode"] == "standalone"
        assert result.observed["mntr"] == {}
        server.kill()
        await asyncio.sleep(0.5)
        down = await run_check(check, server.address)
        assert not down.ok

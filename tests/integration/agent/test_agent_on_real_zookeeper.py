"""The agent beside a real ZooKeeper ensemble: what it reports is what ZooKeeper says."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from milkyway.agent.config import AgentSettings
from milkyway.agent.http import serve
from milkyway.agent.service import AgentService
from milkyway.model.agent_spec import AgentSpec

from .zookeeper_ensemble import CLIENT_PORT, ZooKeeperEnsemble, wait_serving

PERIOD = 1.0

pytestmark = pytest.mark.slow


def _settings(tmp_path: Path, myid: int, address: str) -> AgentSettings:
    spec = AgentSpec.model_validate(
        {
            "checks": [
                {
                    "name": "zookeeper",
                    "kind": "zookeeper",
                    "port": CLIENT_PORT,
                    "periodSeconds": PERIOD,
                    "timeoutSeconds": 2,
                },
                {
                    "name": "client-port",
                    "kind": "tcp",
                    "port": CLIENT_PORT,
                    "periodSeconds": PERIOD,
                    "timeoutSeconds": 2,
                },
            ],
            "volumes": [{"name": "data", "path": str(tmp_path / f"zk-{myid}" / "data")}],
        }
    )
    config = tmp_path / f"agent-{myid}"
    config.mkdir()
    return AgentSettings(
        spec=spec,
        namespace="stream1",
        pod=f"zk-{myid - 1}",
        host=address,
        listen=address,
        port=8471,
        config_dir=config,
        keys_dir=config / "keys",
    )


async def _status(client: httpx.AsyncClient, address: str) -> dict[str, object]:
    return (await client.get(f"http://{address}:8471/v1/status")).json()


async def test_status_and_metrics_follow_the_real_ensemble(tmp_path: Path) -> None:
    with ZooKeeperEnsemble(tmp_path, 3) as ensemble:
        for server in ensemble.servers:
            await wait_serving(server.address)
        async with AsyncExitStack() as stack, httpx.AsyncClient(timeout=10) as client:
            for server in ensemble.servers:
                service = AgentService(_settings(tmp_path, server.myid, server.address))
                runner = await serve(service)
                stack.push_async_callback(service.stop)
                stack.push_async_callback(runner.cleanup)

            async def modes() -> dict[str, str]:
                found: dict[str, str] = {}
                for server in ensemble.servers:
                    status = await _status(client, server.address)
                    zk = next((c for c in status["checks"] if c["check"] == "zookeeper"), None)
                    found[server.address] = zk["observed"].get("mode", "") if zk else ""
                return found

            async with asyncio.timeout(60):
                while True:
                    current = await modes()
                    if sorted(current.values()) == ["follower", "follower", "leader"]:
                        break
                    await asyncio.sleep(0.5)
            leader = next(a for a, mode in current.items() if mode == "leader")
            leader_status = await _status(client, leader)
            zk = next(c for c in leader_status["checks"] if c["check"] == "zookeeper")
            assert zk["observed"]["followers"] == 2 and leader_status["health"] == "Healthy"

            metrics = (await client.get(f"http://{leader}:8471/metrics")).text
            families = {f.name: f for f in text_string_to_metric_families(metrics)}
            assert families["milkyway_zk_synced_followers"].samples[0].value == 2
            mode = families["milkyway_data_system_mode"].samples[0]
            assert mode.labels["mode"] == "leader"
            assert families["milkyway_agent_volume_size_bytes"].samples[0].value > 0

            follower = next(s for s in ensemble.servers if s.address != leader)
            follower.kill()
            loop = asyncio.get_running_loop()
            killed_at = loop.time()

            def failed(status: dict[str, object]) -> set[str]:
                return {c["check"] for c in status["checks"] if not c["ok"]}  # type: ignore[attr-defined]

            async with asyncio.timeout(PERIOD + 2 + 10):
                while True:
                    status = await _status(client, follower.address)
                    if failed(status) == {"zookeeper", "client-port"}:
                        break
                    await asyncio.sleep(0.2)
            assert status["health"] == "Unhealthy"
            assert loop.time() - killed_at <= PERIOD + 2 + 10
            alive = await client.get(f"http://{follower.address}:8471/healthz")
            assert alive.status_code == 200, "the agent keeps serving while its member is down"

            follower.start()
            await wait_serving(follower.address)
            async with asyncio.timeout(30):
                while True:
                    if (await _status(client, follower.address))["health"] == "Healthy":
                        break
                    await asyncio.sleep(0.2)
            restarts = (await client.get(f"http://{follower.address}:8471/metrics")).text
            assert "milkyway_agent_data_system_restarts_total 1.0" in restarts

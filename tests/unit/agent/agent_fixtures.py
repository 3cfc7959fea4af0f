"""An agent served over real HTTP on an ephemeral port, for the agent's tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from milkyway.agent.config import load_settings
from milkyway.agent.http import build_app
from milkyway.agent.service import AgentService
from milkyway.security.agent_tokens import new_signing_key

NAMESPACE = "stream1"
POD = "zk-0"


@dataclass
class SigningKey:
    key_id: str
    private: bytes
    public: bytes


def write_key(keys_dir: Path) -> SigningKey:
    key_id, private, public = new_signing_key()
    keys_dir.mkdir(parents=True, exist_ok=True)
    (keys_dir / f"{key_id}.pub").write_bytes(public)
    return SigningKey(key_id, private, public)


@dataclass
class RunningAgent:
    service: AgentService
    client: httpx.AsyncClient
    url: str


@asynccontextmanager
async def running_agent(
    tmp_path: Path, spec: dict[str, Any], start_loops: bool = False
) -> AsyncIterator[RunningAgent]:
    config_dir = tmp_path / "config"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "agent.json").write_text(json.dumps(spec))
    env = {"MILKYWAY_POD_NAME": POD, "MILKYWAY_POD_NAMESPACE": NAMESPACE}
    settings = load_settings(config_dir, tmp_path / "keys", env=env, port=0, listen="127.0.0.1")
    service = AgentService(settings)
    if start_loops:
        await service.start()
    runner = web.AppRunner(build_app(service), access_log=None, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield RunningAgent(service, client, url)
    finally:
        await runner.cleanup()
        await service.stop()

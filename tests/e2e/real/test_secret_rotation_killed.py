"""A generated Secret rotated across a real ZooKeeper ensemble whose members run real
agents, with the operator process killed (SIGKILL) right after the new value was written:
a new operator process resumes the rotation's FlowRun and finishes it exactly once — one
new value in the source of truth and every zone, every member's agent reporting it
applied, the old value retired."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from milkyway.components import builtin_component_types
from milkyway.kube.agent_client import AgentClient, AgentError
from milkyway.kube.generated_secrets import (
    ROTATION_ANNOTATION,
    VERSION_ANNOTATION,
    annotations_of,
    read_secret,
    secret_files,
    secret_version,
)
from milkyway.kube.resources import COMPONENT_TYPE
from milkyway.operator.secret_rotation import request_rotation

from ..conftest import MANAGEMENT, World
from .conftest import APP, NS, application, members, wait_quorum

pytestmark = pytest.mark.slow

THREE = {"phx": 1, "slc": 1, "ams": 1}
SECRET = f"{APP}-zookeeper-auth"
ZONES = {"phx": "na-phx", "slc": "na-slc", "ams": "eu-ams"}


def _type_with_a_generated_secret() -> dict[str, Any]:
    data = builtin_component_types()["zookeeper"].model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    agent = data["spec"].setdefault("agent", {})
    agent.setdefault("actions", []).append(
        {"name": "reload-auth", "command": ["sh", "-c", "test -s /etc/zk-auth/password"]}
    )
    agent["secrets"] = [
        {
            "name": "auth",
            "path": "/etc/zk-auth",
            "reloadAction": "reload-auth",
            "generate": {"length": 24},
        }
    ]
    return data


async def _operator(world: World, log: Path) -> asyncio.subprocess.Process:
    out = log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "milkyway.cli.main",
            "operator",
            "run",
            f"--kubeconfig={world.kubeconfig}",
            f"--context={MANAGEMENT}",
            "--no-leader-election",
            "--heartbeat=0.5",
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        out.close()


async def _secrets(world: World) -> dict[str, dict[str, Any] | None]:
    return {
        cluster: await read_secret(world.member(cluster), NS, SECRET) for cluster in ZONES.values()
    }


async def _applied(world: World) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for member in members(world):
        try:
            status = await AgentClient(world.member(member.cluster), NS, member.pod).status()
        except AgentError as error:
            found[member.pod] = str(error)
            continue
        found[member.pod] = (status.get("secrets") or {}).get("auth")
    return found


async def test_rotation_survives_an_operator_sigkill_and_finishes_once(
    real_world: World, tmp_path: Path
) -> None:
    world = real_world
    await world.client.create(COMPONENT_TYPE.from_dict(_type_with_a_generated_secret()))
    await world.apply(application(THREE))
    await world.wait_ready(NS, APP, within=240)
    await wait_quorum(world, 3)

    before = await _secrets(world)
    source = before["na-phx"]
    assert source is not None and annotations_of(source)[VERSION_ANNOTATION] == "1"
    assert all(secret_files(s or {}) == secret_files(source) for s in before.values()), before
    initial = secret_version(source)

    async def everyone_applied(version: str) -> bool:
        seen = await _applied(world)
        return len(seen) == 3 and all(
            isinstance(s, dict) and s.get("applied") == version for s in seen.values()
        )

    await world.wait_for(lambda: everyone_applied(initial), "every agent on the first value", 60)

    await world.stop_operator()
    log = tmp_path / "operator.log"
    first = await _operator(world, log)
    second: asyncio.subprocess.Process | None = None
    try:
        run = await request_rotation(world.client, APP, NS, "zookeeper", "auth", requested_by="t")

        async def written() -> bool:
            found = await read_secret(world.member("na-phx"), NS, SECRET)
            return annotations_of(found or {}).get(ROTATION_ANNOTATION) == run

        await world.wait_for(written, "the rotation to write its value", 120, every=0.05)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        unfinished = {r["metadata"]["name"] for r in await world.unfinished_runs(NS, APP)}
        assert run in unfinished, "the rotation ended before the operator was killed"

        second = await _operator(world, log)

        async def finished() -> str | None:
            runs = {r["metadata"]["name"]: r for r in await world.runs(NS, APP)}
            phase = (runs[run].get("status") or {}).get("phase")
            return phase if phase in ("Succeeded", "Failed", "Cancelled") else None

        phase = await world.wait_for(finished, "the rotation to finish", 240, every=0.5)
        assert phase == "Succeeded", log.read_text()[-3000:]

        after = await _secrets(world)
        source = after["na-phx"]
        assert source is not None
        assert annotations_of(source)[VERSION_ANNOTATION] == "2", "exactly one new value"
        assert annotations_of(source)[ROTATION_ANNOTATION] == run
        assert set(secret_files(source)) == {"password"}, "the old value is retired"
        assert secret_files(source)["password"] != secret_files(before["na-phx"] or {})["password"]
        for cluster, copy in after.items():
            assert copy is not None and secret_files(copy) == secret_files(source), cluster
            assert annotations_of(copy)[ROTATION_ANNOTATION] == run, cluster
        final = secret_version(source)
        await world.wait_for(lambda: everyone_applied(final), "every agent on the new value", 60)
        for pod, seen in (await _applied(world)).items():
            assert seen["current"] == final and seen["lastError"] is None, (pod, seen)
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()

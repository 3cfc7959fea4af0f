"""The sidecar agents of a real ZooKeeper ensemble, reached the way Milkyway reaches them
on any cluster: through each member cluster's API server (``pods/proxy``).

Each member pod runs ``milkyway agent`` as a real process beside a real ZooKeeper; what
the agents report must be what ZooKeeper says, actions need the namespace's signing key,
and a stopped ZooKeeper process turns its member Unhealthy while its agent keeps serving.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.polling import eventually
from typer.testing import CliRunner

from milkyway.cli.main import app as cli
from milkyway.kube.agent_client import AgentClient, AgentError

from ..conftest import World
from .conftest import APP, NS, application, four_letter, members, wait_quorum

THREE = {"phx": 1, "slc": 1, "ams": 1}
CHECK_PERIOD = 10
"""The built-in ZooKeeper type's agent check period (seconds)."""

pytestmark = pytest.mark.slow


async def _statuses(world: World) -> dict[str, dict]:
    found = {}
    for member in members(world):
        agent = AgentClient(world.member(member.cluster), NS, member.pod)
        found[member.pod] = await agent.status()
    return found


def _answered(check: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[object]]:
    """``check``, read as "not yet" while the agent does not answer (it restarts too)."""

    async def run() -> object:
        try:
            return await check()
        except AgentError:
            return None

    return run


async def test_agents_report_the_real_ensemble_through_pods_proxy(real_world: World) -> None:
    world = real_world
    await world.apply(application(THREE))
    await world.wait_ready(NS, APP, within=240)
    await wait_quorum(world, 3)

    async def one_leader() -> dict[str, dict] | None:
        statuses = await _statuses(world)
        modes = sorted(
            next(c for c in s["checks"] if c["check"] == "zookeeper")["observed"].get("mode", "")
            for s in statuses.values()
        )
        return statuses if modes == ["follower", "follower", "leader"] else None

    statuses = await eventually(
        _answered(one_leader),
        what="agents agree on one leader",
        within=3 * CHECK_PERIOD + 30,
        interval=0.5,
    )
    assert all(s["health"] == "Healthy" for s in statuses.values()), statuses
    leader_pod = next(
        pod for pod, s in statuses.items() if s["checks"][0]["observed"].get("mode") == "leader"
    )
    leader = next(m for m in members(world) if m.pod == leader_pod)
    leader_agent = AgentClient(world.member(leader.cluster), NS, leader.pod)

    async def both_followers_synced() -> dict[str, Any] | None:
        # Each agent reads its own member on its own period: the followers can both say
        # "follower" before the leader's last mntr counted the second one as synced.
        text = await leader_agent.metrics()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        synced = families["milkyway_zk_synced_followers"].samples[0].value
        return families if synced == 2 else None

    families: Any = await eventually(
        _answered(both_followers_synced),
        what="the leader's agent counts two synced followers",
        within=3 * CHECK_PERIOD + 30,
        interval=0.5,
    )
    assert families["milkyway_data_system_mode"].samples[0].labels["mode"] == "leader"

    report = await leader_agent.run_action("srvr", requester="alice")
    assert report["ok"] and "Mode: leader" in report["output"]
    assert report["requester"] == "alice"
    with pytest.raises(AgentError) as refused:
        await leader_agent.run_action("rm-everything", requester="alice")
    assert refused.value.status == 404

    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["status", APP, "-n", NS, "--kubeconfig", str(world.kubeconfig), "--context", "mgmt"],
    )
    assert result.exit_code == 0, result.output
    for zone in THREE:
        assert zone in result.output
    assert result.output.count("Healthy") == 3
    assert "serving as leader" in result.output

    follower = next(m for m in members(world) if m.pod != leader.pod)
    runtime = world.sim[follower.cluster].runtime
    assert runtime is not None
    handle = runtime.container(NS, follower.pod, "main")
    assert handle is not None and handle.pid is not None
    os.killpg(handle.pid, signal.SIGSTOP)
    follower_agent = AgentClient(world.member(follower.cluster), NS, follower.pod)

    async def health() -> str:
        return str((await follower_agent.status())["health"])

    try:

        async def unhealthy() -> bool:
            return await health() == "Unhealthy"

        await eventually(
            _answered(unhealthy),
            what="the stopped member reported Unhealthy",
            within=CHECK_PERIOD + 3 + 15,
            interval=0.5,
        )
        agent = runtime.container(NS, follower.pod, "milkyway-agent")
        assert agent is not None and agent.pid is not None and agent.restart_count == 0
    finally:
        os.killpg(handle.pid, signal.SIGCONT)

    async def healthy() -> bool:
        return await health() == "Healthy"

    await eventually(
        _answered(healthy),
        what="the resumed member reported Healthy",
        within=CHECK_PERIOD + 3 + 30,
        interval=0.5,
    )


async def test_a_crashing_agent_leaves_its_member_alone(real_world: World) -> None:
    world = real_world
    await world.apply(application(THREE))
    await world.wait_ready(NS, APP, within=240)
    await wait_quorum(world, 3)
    member = members(world)[0]
    runtime = world.sim[member.cluster].runtime
    assert runtime is not None
    main_before = runtime.container(NS, member.pod, "main")
    agent_before = runtime.container(NS, member.pod, "milkyway-agent")
    assert main_before is not None and main_before.pid is not None
    assert agent_before is not None and agent_before.pid is not None

    for _ in range(2):
        agent = runtime.container(NS, member.pod, "milkyway-agent")
        assert agent is not None and agent.pid is not None
        os.killpg(agent.pid, signal.SIGKILL)

        async def agent_restarted(previous: int = agent.restart_count) -> bool:
            now = runtime.container(NS, member.pod, "milkyway-agent")
            return now is not None and now.restart_count > previous and now.pid is not None

        await eventually(
            _answered(agent_restarted),
            what="the agent container restarted",
            within=60,
            interval=0.5,
        )

    main_after = runtime.container(NS, member.pod, "main")
    assert main_after is not None
    assert (main_after.pid, main_after.restart_count) == (main_before.pid, 0)
    assert "zk_server_state" in await four_letter(member.ip, "mntr")
    agent = AgentClient(world.member(member.cluster), NS, member.pod)

    async def serving_again() -> bool:
        return (await agent.status())["health"] in ("Healthy", "Unknown")

    await eventually(
        _answered(serving_again),
        what="the restarted agent answers through pods/proxy",
        within=60,
        interval=0.5,
    )

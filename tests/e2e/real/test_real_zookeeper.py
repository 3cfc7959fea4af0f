"""A real 5-member ZooKeeper ensemble over three simulated clusters, from the rendered
configuration unchanged, through the operator's rolling restart, rolling upgrade and
scaling, with a client writing a znode every 50 ms; and the same instruments catching a
disruption that breaks the quorum policy."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
from lightkube.resources.core_v1 import ConfigMap, Event

from milkyway.cli.app_commands import (
    SpecEdit,
    _now,
    request_restart,
    scale_edit,
    upgrade_edit,
)
from milkyway.sim.process.container import group_members

from ..conftest import World
from .conftest import (
    APP,
    NS,
    Sampler,
    Writer,
    application,
    connect_string,
    four_letter,
    members,
    mntr_fields,
    read_back,
    wait_quorum,
)

FIVE = {"phx": 2, "slc": 2, "ams": 1}
THREE = {"phx": 1, "slc": 1, "ams": 1}

pytestmark = pytest.mark.slow


async def _provision(world: World, sizes: dict[str, int], version: str = "3.8.4") -> None:
    await world.apply(application(sizes, version))
    await world.wait_ready(NS, APP, within=240)
    await wait_quorum(world, sum(sizes.values()))


async def _rendered_config(world: World, cluster: str) -> str:
    client = world.member(cluster)
    async for cm in client.list(ConfigMap, namespace=NS):
        if "zoo.cfg" in (cm.data or {}):
            return cm.data["zoo.cfg"]
    raise AssertionError(f"no zoo.cfg ConfigMap in {cluster}")


async def _check_one_quorum(real_world: World) -> None:
    """Five members over three clusters: one leader, four followers, all synced, running
    the rendered zoo.cfg unchanged."""
    found = members(real_world)
    assert {m.cluster for m in found} == {"na-phx", "na-slc", "eu-ams"}
    states = {m.pod: mntr_fields(await four_letter(m.ip, "mntr")) for m in found}
    roles = sorted(s["zk_server_state"] for s in states.values())
    assert roles == ["follower"] * 4 + ["leader"]
    leader = next(s for s in states.values() if s["zk_server_state"] == "leader")
    assert leader["zk_synced_followers"] == "4"
    config = await _rendered_config(real_world, "eu-ams")
    servers = [line for line in config.splitlines() if line.startswith("server.")]
    assert len(servers) == 5 and all(".svc.clusterset.local:" in s for s in servers), servers
    runtime = real_world.sim["eu-ams"].runtime
    assert runtime is not None
    handle = runtime.container(NS, "zk-zookeeper-ams-0", "main")
    assert handle is not None and handle.pid is not None
    process = await asyncio.create_subprocess_exec(
        *handle.enter_argv, "cat", "/etc/milkyway/config/zoo.cfg", stdout=asyncio.subprocess.PIPE
    )
    mounted, _ = await process.communicate()
    assert mounted.decode() == config, "the server did not run the rendered zoo.cfg"


async def _through(world: World, change: object) -> tuple[Writer, Sampler, set[str]]:
    """Run ``change`` (a coroutine) with the writer and the sampler going; return them and
    what is readable afterwards."""
    writer = Writer(connect_string(world))
    sampler = Sampler(world, expected=len(members(world)))
    writer.start()
    await asyncio.sleep(2)
    sampler.start()
    try:
        await change  # type: ignore[misc]
    finally:
        await sampler.stop()
        await asyncio.to_thread(writer.stop)
    readable = await asyncio.to_thread(read_back, connect_string(world))
    return writer, sampler, readable


def _judge(writer: Writer, sampler: Sampler, readable: set[str]) -> None:
    lost = [p for p in writer.acked if p not in readable]
    assert not lost, f"{len(lost)} acknowledged writes are gone, e.g. {lost[:3]}"
    assert len(writer.acked) > 20, "the writer hardly wrote; the test measured nothing"
    assert sampler.most_down <= (sampler.expected - 1) // 2, (
        f"{sampler.most_down} of {sampler.expected} members were down at once: no majority "
        f"was left, the quorum was lost beyond a leader election ({sampler.worst})"
    )


async def test_one_quorum_kept_through_rolling_restart_and_upgrade(real_world: World) -> None:
    await _provision(real_world, FIVE)
    await _check_one_quorum(real_world)
    before = {m.pod: m.ip for m in members(real_world)}

    async def restart() -> None:
        await request_restart(real_world.client, APP, NS, "zookeeper", _now())
        await asyncio.sleep(3)
        await real_world.wait_ready(NS, APP, within=300)
        await wait_quorum(real_world, 5)

    writer, sampler, readable = await _through(real_world, restart())
    _judge(writer, sampler, readable)
    assert sampler.most_down >= 1, "no member was ever down: nothing was restarted"
    assert set(before) == {m.pod for m in members(real_world)}

    async def upgrade() -> None:
        await real_world.edit(NS, APP, upgrade_edit("zookeeper", "3.9.3", None))
        await asyncio.sleep(3)
        await real_world.wait_ready(NS, APP, within=300)
        await wait_quorum(real_world, 5)

    writer, sampler, readable = await _through(real_world, upgrade())
    _judge(writer, sampler, readable)
    assert sampler.most_down >= 1


async def test_a_broken_disruption_policy_is_caught(real_world: World) -> None:
    """The leader and two followers deleted together: the instruments must say so."""
    await _provision(real_world, FIVE)

    async def break_policy() -> None:
        states = {m.pod: m for m in members(real_world)}
        roles = {pod: mntr_fields(await four_letter(m.ip, "mntr")) for pod, m in states.items()}
        leader = next(p for p, r in roles.items() if r.get("zk_server_state") == "leader")
        followers = [p for p, r in roles.items() if r.get("zk_server_state") == "follower"][:2]
        for pod in (leader, *followers):
            m = states[pod]
            real_world.sim[m.cluster].api.delete("v1/pods", pod, namespace=NS)
        await asyncio.sleep(3)
        await wait_quorum(real_world, 5, within=240)

    writer, sampler, readable = await _through(real_world, break_policy())
    with pytest.raises(AssertionError, match="no majority was left"):
        _judge(writer, sampler, readable)


def _resize(sizes: dict[str, int]) -> SpecEdit:
    """Set several zones' sizes in one edit (an even total in between is refused)."""
    edits = [scale_edit("zookeeper", zone, size, None) for zone, size in sizes.items()]

    def edit(spec: dict[str, Any]) -> str:
        return "; ".join(e(spec) for e in edits)

    return edit


async def test_scale_out_and_in_keep_every_write(real_world: World) -> None:
    await _provision(real_world, THREE)

    async def scale_out() -> None:
        await real_world.edit(NS, APP, _resize({"phx": 2, "slc": 2}))
        await asyncio.sleep(3)
        await real_world.wait_ready(NS, APP, within=300)
        await wait_quorum(real_world, 5)

    writer, _sampler, readable = await _through(real_world, scale_out())
    assert not [p for p in writer.acked if p not in readable]
    assert len(writer.acked) > 20
    assert len(members(real_world)) == 5

    async def scale_in() -> None:
        await real_world.edit(NS, APP, _resize({"phx": 1, "slc": 1}))
        await asyncio.sleep(3)
        await real_world.wait_ready(NS, APP, within=300)
        await wait_quorum(real_world, 3)

    writer, _sampler, readable = await _through(real_world, scale_in())
    assert not [p for p in writer.acked if p not in readable]
    assert len(writer.acked) > 20
    assert len(members(real_world)) == 3


async def test_killed_server_restarts_with_backoff_and_lost_node_member_returns(
    real_world: World,
) -> None:
    await _provision(real_world, THREE)
    cluster, pod = "na-slc", "zk-zookeeper-slc-0"
    runtime = real_world.sim[cluster].runtime
    plane = real_world.control.planes[cluster]
    assert runtime is not None

    def status() -> dict[str, Any]:
        found = plane.pods.get(NS, pod) or {}
        statuses = (found.get("status") or {}).get("containerStatuses") or []
        return next((s for s in statuses if s["name"] == "main"), {})

    for count in (1, 2):
        handle = runtime.container(NS, pod, "main")
        assert handle is not None and handle.pid is not None
        os.kill(handle.pid, signal.SIGKILL)
        await real_world.wait_for(
            lambda n=count: status().get("restartCount") == n and status().get("ready"),
            f"restart {count} of the killed server",
            within=120,
        )
        assert status()["lastState"]["terminated"]["exitCode"] == 137
        await wait_quorum(real_world, 3)
    events = [
        e
        for e in real_world.sim[cluster].api.list("v1/events", namespace=NS)["items"]
        if e["involvedObject"].get("name") == pod and e["reason"] == "BackOff"
    ]
    assert events, "no BackOff event for the restarted container"

    handle = runtime.container(NS, pod, "main")
    assert handle is not None and handle.pid is not None
    pid = handle.pid
    node = (plane.pods.get(NS, pod) or {})["spec"]["nodeName"]
    fault = await real_world.control.faults.lose_node(cluster, node)
    await real_world.wait_for(lambda: not group_members(pid), "the node's processes gone")
    await real_world.control.faults.lift(fault.id)
    await real_world.wait_ready(NS, APP, within=240)
    await wait_quorum(real_world, 3)


async def test_member_of_a_node_lost_for_good_comes_back_elsewhere(real_world: World) -> None:
    """A node that stays lost past the Application's grace period: its member comes back on
    another node (on its volume when the volume can follow it, on a new one otherwise),
    the ensemble regains its three members and no acknowledged write is lost."""
    await real_world.apply(application(THREE) + "  replacement: {gracePeriodSeconds: 5}\n")
    await real_world.wait_ready(NS, APP, within=240)
    await wait_quorum(real_world, 3)
    cluster, pod = "na-slc", "zk-zookeeper-slc-0"
    plane = real_world.control.planes[cluster]
    lost_node = (plane.pods.get(NS, pod) or {})["spec"]["nodeName"]

    async def lose_for_good() -> None:
        await real_world.control.faults.lose_node(cluster, lost_node)

        def elsewhere() -> bool:
            found = plane.pods.get(NS, pod) or {}
            return (found.get("spec") or {}).get("nodeName") not in (None, lost_node)

        await real_world.wait_for(elsewhere, "the member scheduled on another node", 240)
        await real_world.wait_ready(NS, APP, within=300)
        await wait_quorum(real_world, 3)

    writer, _sampler, readable = await _through(real_world, lose_for_good())
    lost = [p for p in writer.acked if p not in readable]
    assert not lost, f"{len(lost)} acknowledged writes are gone, e.g. {lost[:3]}"
    assert len(writer.acked) > 20
    reasons = [
        event.reason
        async for event in real_world.client.list(Event, namespace=NS)
        if event.involvedObject.name == APP
    ]
    assert "MemberLost" in reasons, reasons

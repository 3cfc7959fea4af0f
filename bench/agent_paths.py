"""How fast the paths through the agents are, end to end, with real processes.

Runs three simulated member clusters whose kubelets run a real ZooKeeper ensemble with
a real ``milkyway agent`` beside each member, sized volumes, and the operator (disk
watch every second, replacement grace 0). Prints:

* an action's round trip (``srvr``: token signed, sent through the API server's
  ``pods/proxy``, verified, run) against the same action sent straight to the agent's
  address, as the baseline;
* after ``fill-disk`` takes a member's volume to 95 %: the time until the agent reports
  it critical, until the operator's DiskCritical Event, until the ``replace-member``
  flow starts, and until the Application is Ready again on a new volume.

Needs Debian's zookeeper (apt-get install -y zookeeper) and root (sized volumes).

Run: .venv/bin/python bench/agent_paths.py [--actions 50]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.resources.core_v1 import Event, Pod

from milkyway.cli.app_commands import apply_documents
from milkyway.cli.demo import MemberCluster, prepare_members, register_members
from milkyway.kube.agent_client import AgentClient, AgentError
from milkyway.kube.agent_contract import AGENT_PORT, AGENT_TOKEN_HEADER
from milkyway.kube.agent_keys import ensure_signing_key
from milkyway.kube.resources import APPLICATION, FLOWRUN
from milkyway.operator.crd_install import install_crds
from milkyway.operator.manager import Operator, OperatorSettings
from milkyway.security.agent_tokens import pod_audience, sign_action_token
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.process import ImageMap

NS, APP = "bench", "zk"
MEMBERS = (
    MemberCluster("na-phx", "NA", "phx"),
    MemberCluster("na-slc", "NA", "slc"),
    MemberCluster("eu-ams", "EU", "ams"),
)
APPLICATION_YAML = f"""\
apiVersion: milkyway.ebay.com/v1
kind: Application
metadata: {{name: {APP}, namespace: {NS}}}
spec:
  replacement: {{gracePeriodSeconds: 0}}
  components:
    - name: zookeeper
      version: "3.8.4"
      params: {{heapMb: 96, tickTime: 500, initLimit: 20, syncLimit: 10}}
      storage: {{size: 256Mi}}
      regions:
        - name: NA
          zones: [{{name: phx, size: 1}}, {{name: slc, size: 1}}]
        - name: EU
          zones: [{{name: ams, size: 1}}]
"""


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(ordered)} calls)"


async def _until(check: Callable[[], Awaitable[Any]], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise SystemExit(f"gave up after {within:g} s waiting for {what}")


async def _ready(client: AsyncClient) -> bool:
    app = (await client.get(APPLICATION, APP, namespace=NS)).to_dict()
    status = app.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return ready and not status.get("currentFlow")


async def _actions(control: ControlledClusters, member: AsyncClient, pod: str, n: int) -> None:
    runtime = next(r for r in control.runtimes.values() if (NS, pod) in r.pods)
    address = runtime.pods[(NS, pod)].ip
    agent = AgentClient(member, NS, pod)
    proxied = []
    for _ in range(n):
        started = time.perf_counter()
        report = await agent.run_action("srvr", requester="bench")
        proxied.append(time.perf_counter() - started)
        assert report["ok"], report
    key = await ensure_signing_key(member, NS)
    direct = []
    async with httpx.AsyncClient(base_url=f"http://{address}:{AGENT_PORT}") as http:
        for _ in range(n):
            started = time.perf_counter()
            token = sign_action_token(
                key.private_pem,
                key.key_id,
                audience=pod_audience(NS, pod),
                action="srvr",
                requester="bench",
            )
            answer = await http.post("/v1/actions/srvr", headers={AGENT_TOKEN_HEADER: token})
            direct.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text
    print(f"action 'srvr' straight to the agent (baseline): {_ms(direct)}")
    print(f"action 'srvr' through pods/proxy (signing key read, token signed): {_ms(proxied)}")


async def _disk(
    control: ControlledClusters, client: AsyncClient, member: AsyncClient, cluster: str, pod: str
) -> None:
    agent = AgentClient(member, NS, pod)
    old = (await member.get(Pod, pod, namespace=NS)).metadata
    assert old is not None
    started = time.monotonic()
    fault = await control.faults.fill_disk(cluster, pod, namespace=NS, percent=95)
    filled = time.monotonic()

    async def agent_critical() -> bool:
        try:
            status = await agent.status()
        except AgentError:
            return False
        return any(v["level"] == "critical" for v in status.get("volumes") or [])

    async def event() -> bool:
        events = [e async for e in member.list(Event, namespace=NS)]
        return any(e.reason == "DiskCritical" and e.involvedObject.name == pod for e in events)

    async def flow() -> bool:
        runs = [dict(r.to_dict()) async for r in client.list(FLOWRUN, namespace=NS)]
        return any(
            str((r.get("spec") or {}).get("flow", "")).startswith("milkyway-replace-member")
            for r in runs
        )

    await _until(agent_critical, 60, "the agent to report the volume critical")
    reported = time.monotonic()
    await _until(event, 60, "the DiskCritical Event")
    evented = time.monotonic()
    await _until(flow, 120, "the replace-member flow")
    flowed = time.monotonic()

    async def replaced_and_ready() -> bool:
        try:
            current = await member.get(Pod, pod, namespace=NS)
        except ApiError:
            return False
        new = current.metadata is not None and current.metadata.uid != old.uid
        return new and await _ready(client)

    await _until(replaced_and_ready, 600, "the Application Ready on a new volume")
    back = time.monotonic()
    await control.faults.lift(fault.id)
    print(f"fill-disk wrote {fault.params['bytes'] / 2**20:.0f} MiB in {filled - started:.2f} s")
    print(
        f"disk crossing -> agent reports critical: {reported - filled:.1f} s "
        "(the agent reads volumes every 10 s)"
    )
    print(f"agent report -> DiskCritical Event (disk watch every 1 s): {evented - reported:.1f} s")
    print(f"Event -> replace-member flow started (grace 0): {flowed - evented:.1f} s")
    print(f"disk crossing -> replace-member flow started: {flowed - filled:.1f} s")
    print(f"flow start -> Application Ready on a new volume: {back - flowed:.1f} s")


async def main(actions: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        names = ["mgmt", *(m.name for m in MEMBERS)]
        async with (
            SimulatedClusters(names, kubeconfig_path=tmp / "kubeconfig") as sim,
            ControlledClusters(
                sim,
                nodes=4,
                config=ControlPlaneConfig.fast(crash_backoff=1.0),
                topology={m.name: (m.region, m.zone) for m in MEMBERS},
                admin=False,
                images=ImageMap([]),
                state_dir=tmp / "state",
                sized_volumes=True,
            ) as control,
        ):
            config = KubeConfig.from_file(sim.kubeconfig_path)
            client = AsyncClient(config.get("mgmt"))
            await install_crds(client)
            await prepare_members(sim.kubeconfig_path, MEMBERS)
            await register_members(client, sim.kubeconfig_path.read_text(), MEMBERS)
            settings = OperatorSettings(
                leader_election=False,
                heartbeat_interval=0.5,
                engine_poll_interval=0.1,
                flow_lease_seconds=3.0,
                resync_period=5.0,
                disk_watch_interval=1.0,
            )
            operator = Operator(sim.kubeconfig_path, "mgmt", settings)
            running = asyncio.create_task(operator.run_forever())
            member = AsyncClient(config.get(MEMBERS[0].name))
            try:
                await operator.wait_until_leading(30)
                await apply_documents(client, APPLICATION_YAML, "default")
                await _until(lambda: _ready(client), 300, "the ensemble Ready")
                pod = f"{APP}-zookeeper-phx-0"

                async def answering() -> bool:
                    try:
                        return bool(await AgentClient(member, NS, pod).status())
                    except AgentError:
                        return False

                await _until(answering, 60, "the agent to answer")
                await _actions(control, member, pod, actions)
                await _disk(control, client, member, MEMBERS[0].name, pod)
            finally:
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
                await member.close()
                await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=50)
    asyncio.run(main(parser.parse_args().actions))

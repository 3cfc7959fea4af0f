"""Pods of mapped images run as real processes; other pods stay simulated beside them."""

from __future__ import annotations

import asyncio
from typing import Any

from milkyway.sim.process.container import group_members

from .conftest import ProcessSim, eventually, shell_pod


async def test_mapped_pod_runs_a_real_process_beside_a_simulated_one(
    process_sim: ProcessSim,
) -> None:
    api = process_sim.api()
    api.create(shell_pod("real", "echo started as $(id -u); exec sleep 300"))
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "kwok", "namespace": "default"},
            "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
        }
    )
    await eventually(lambda: process_sim.status("real").get("ready"), what="real pod Ready")
    await eventually(lambda: process_sim.status("kwok").get("ready"), what="kwok pod Ready")
    runtime = process_sim.runtime()
    handle = runtime.container("default", "real")
    assert handle is not None and handle.pid is not None
    assert handle.pid in group_members(handle.pid)
    pod_ip = process_sim.pod("real")["status"]["podIP"]
    assert pod_ip == handle.pod_ip and pod_ip.startswith("127.")
    assert runtime.container("default", "kwok") is None
    assert process_sim.pod("kwok")["status"]["podIP"].startswith("10.")
    await eventually(
        lambda: "started as 0" in handle.log_path.read_text(), what="the container's output"
    )
    process = await asyncio.create_subprocess_exec(
        *handle.enter_argv, "cat", "/etc/hosts", stdout=asyncio.subprocess.PIPE
    )
    hosts, _ = await process.communicate()
    assert pod_ip in hosts.decode()


async def test_deleting_a_pod_ends_its_process_group(process_sim: ProcessSim) -> None:
    api = process_sim.api()
    api.create(shell_pod("doomed", "sleep 300 & sleep 300"))
    await eventually(lambda: process_sim.status("doomed").get("ready"), what="pod Ready")
    handle = process_sim.runtime().container("default", "doomed")
    assert handle is not None and handle.pid is not None
    pid = handle.pid
    await eventually(lambda: len(group_members(pid)) >= 2, what="both processes running")
    api.delete("v1/pods", "doomed", namespace="default")
    await eventually(lambda: not process_sim.pod("doomed"), what="pod removed")
    assert group_members(pid) == []


async def test_the_project_image_runs_the_installed_milkyway(process_sim: ProcessSim) -> None:
    process_sim.api().create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "cli", "namespace": "default"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "main", "image": "milkyway/milkyway:1.0", "args": ["--help"]}
                ],
            },
        }
    )
    await eventually(
        lambda: process_sim.pod("cli").get("status", {}).get("phase") == "Succeeded",
        what="the milkyway command to finish",
    )
    terminated = process_sim.status("cli")["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    handle = process_sim.runtime().container("default", "cli")
    assert handle is not None
    assert "Usage: milkyway" in handle.log_path.read_text()


async def test_service_names_resolve_to_ready_pods_in_every_cluster(
    process_sim: ProcessSim,
) -> None:
    east, west = process_sim.api("east"), process_sim.api("west")
    for api in (east, west):
        api.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {
                    "clusterIP": "None",
                    "selector": {"app": "web"},
                    "ports": [{"port": 80}],
                },
            }
        )
    for api, name in ((east, "web-a"), (east, "web-b"), (west, "web-c")):
        pod = shell_pod(name, "exec sleep 300")
        pod["metadata"]["labels"] = {"app": "web"}
        api.create(pod)
    for cluster, name in (("east", "web-a"), ("east", "web-b"), ("west", "web-c")):
        await eventually(
            lambda c=cluster, n=name: process_sim.status(n, c).get("ready"), what=f"{name} Ready"
        )
    ips = {
        name: process_sim.pod(name, cluster)["status"]["podIP"]
        for cluster, name in (("east", "web-a"), ("east", "web-b"), ("west", "web-c"))
    }
    handle = process_sim.runtime("east").container("default", "web-a")
    assert handle is not None and handle.pid is not None

    async def resolve(name: str) -> set[str]:
        process = await asyncio.create_subprocess_exec(
            *handle.enter_argv, "getent", "ahostsv4", name, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        return {line.split()[0] for line in out.decode().splitlines() if line.strip()}

    local = await eventually_async(
        lambda: resolve("web.default.svc.cluster.local"),
        lambda found: found == {ips["web-a"], ips["web-b"]},
    )
    assert local == {ips["web-a"], ips["web-b"]}
    everywhere = await resolve("web.default.svc.clusterset.local")
    assert everywhere == set(ips.values())


async def eventually_async(produce: Any, accept: Any, within: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await produce()
        if accept(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.2)

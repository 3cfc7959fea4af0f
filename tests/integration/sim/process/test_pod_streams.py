"""kubectl logs, exec, port-forward and the proxies on process-backed pods."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import httpx

from ...conftest import Kubectl
from .conftest import ProcessSim, eventually, shell_pod

SERVER = "echo serving; exec python3 -m http.server 8080"


def _kubectl(process_sim: ProcessSim) -> Kubectl:
    sim = process_sim.sim
    return Kubectl(sim.kubeconfig_path, "east", sim.kubeconfig_path.parent / "kube-cache")


def _client(process_sim: ProcessSim) -> httpx.AsyncClient:
    sim = process_sim.sim
    assert sim.certificate is not None
    return httpx.AsyncClient(
        base_url=sim["east"].url,
        headers={"Authorization": f"Bearer {sim.admin_token}"},
        verify=ssl.create_default_context(cadata=sim.certificate.ca_pem.decode()),
        timeout=30,
    )


async def _serving(process_sim: ProcessSim, http: httpx.AsyncClient, name: str) -> str:
    await eventually(lambda: process_sim.status(name).get("ready"), what=f"{name} Ready")

    async def answered() -> bool:
        got = await http.get(f"/api/v1/namespaces/default/pods/{name}:8080/proxy/")
        return got.status_code == 200

    deadline = asyncio.get_running_loop().time() + 60
    while not await answered():
        assert asyncio.get_running_loop().time() < deadline, "the pod's server never answered"
        await asyncio.sleep(0.2)
    return str(process_sim.pod(name)["status"]["podIP"])


async def test_proxy_exec_and_port_forward_reach_the_pods_server(
    process_sim: ProcessSim,
) -> None:
    api = process_sim.api()
    api.create(shell_pod("web", SERVER, container={"ports": [{"containerPort": 8080}]}))
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        }
    )
    kubectl = _kubectl(process_sim)
    async with _client(process_sim) as http:
        pod_ip = await _serving(process_sim, http, "web")
        listing = await http.get("/api/v1/namespaces/default/pods/web/proxy/")
        assert listing.status_code == 200 and "Directory listing" in listing.text

        async def through_service() -> bool:
            got = await http.get("/api/v1/namespaces/default/services/web:http/proxy/")
            return got.status_code == 200 and "Directory listing" in got.text

        deadline = asyncio.get_running_loop().time() + 60
        while not await through_service():
            assert asyncio.get_running_loop().time() < deadline, "services/proxy never answered"
            await asyncio.sleep(0.2)

    # A shell inside the pod talks to the pod's own server, as a health check would.
    script = (
        f"exec 3<>/dev/tcp/{pod_ip}/8080; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; "
        "head -1 <&3; echo $HOSTNAME"
    )
    ran = await kubectl.run("exec", "web", "--", "bash", "-c", script)
    assert ran.stdout.splitlines()[0].startswith("HTTP/1.0 200")
    failed = await kubectl.run("exec", "web", "--", "sh", "-c", "exit 7", check=False)
    assert failed.returncode == 7

    proc = await kubectl.start("port-forward", "pod/web", ":8080")
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        local = int(line.split(b"127.0.0.1:")[1].split()[0])
        async with httpx.AsyncClient(timeout=30) as direct:
            got = await direct.get(f"http://127.0.0.1:{local}/")
        assert got.status_code == 200 and "Directory listing" in got.text
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        await proc.wait()

    logs = await kubectl.run("logs", "web")
    assert logs.stdout.startswith("serving\n")
    assert '"GET / HTTP/1.1" 200' in logs.stdout  # the server's own access log


async def test_logs_follow_and_previous_of_a_process(process_sim: ProcessSim) -> None:
    api = process_sim.api()
    script = (
        "echo run $(cat /tmp/runs 2>/dev/null | wc -l); echo x >> /tmp/runs; "
        "i=0; while [ $i -lt 4 ]; do echo tick $i; i=$((i+1)); sleep 0.3; done; exit 1"
    )
    api.create(shell_pod("ticker", script))
    kubectl = _kubectl(process_sim)
    await eventually(
        lambda: process_sim.status("ticker").get("state", {}).get("running"), what="ticker running"
    )
    follower = await kubectl.start("logs", "-f", "ticker")
    try:
        assert follower.stdout is not None
        seen = []
        while len(seen) < 5:
            line = await asyncio.wait_for(follower.stdout.readline(), 30)
            assert line, f"kubectl logs -f ended early after {seen}"
            seen.append(line.decode().strip())
        assert seen[0].startswith("run ") and seen[1:] == [f"tick {n}" for n in range(4)]
        assert await asyncio.wait_for(follower.wait(), 30) == 0, "follow outlived the container"
    finally:
        if follower.returncode is None:
            follower.kill()
            await follower.wait()

    await eventually(
        lambda: (
            process_sim.status("ticker").get("restartCount", 0) >= 1
            and process_sim.status("ticker").get("state", {}).get("running")
        ),
        what="the restarted instance running",
    )
    previous = await kubectl.run("logs", "ticker", "--previous")
    assert previous.stdout.splitlines()[1:] == [f"tick {n}" for n in range(4)]
    tail = await kubectl.run("logs", "ticker", "--previous", "--tail=1")
    assert tail.stdout == "tick 3\n"

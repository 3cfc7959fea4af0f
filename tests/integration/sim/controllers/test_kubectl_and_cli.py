"""Against real HTTP servers: ``kubectl rollout status``/``kubectl wait`` work, and every
fault injected with ``milkyway sim fault`` shows up through kubectl and clears when lifted.

kubectl runs with a fresh ``--cache-dir`` per test; the fault CLI runs as its own process
and finds the simulator through ``<kubeconfig>.admin.json``, exactly as against
``milkyway sim up``.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.polling import eventually

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.admin import admin_file
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig

from .conftest import ClusterCli, sts_manifest


@dataclass
class Running(ClusterCli):
    sim: SimulatedClusters | None = None
    ctl: ControlledClusters | None = None

    @property
    def api(self) -> ClusterAPI:
        assert self.sim is not None
        return self.sim["east"].api


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    config = ControlPlaneConfig.fast(pod_eviction_timeout=60.0)
    async with (
        SimulatedClusters(["east"], kubeconfig_path=tmp_path / "kubeconfig") as sim,
        ControlledClusters(sim, nodes=2, config=config) as ctl,
    ):
        yield Running(tmp_path / "kubeconfig", tmp_path / "cache", sim=sim, ctl=ctl)


async def test_rollout_status_and_wait_for_ready(running: Running) -> None:
    api = running.api
    api.create(sts_manifest(storage_class=None))
    _, out, _ = await running.kubectl("rollout", "status", "statefulset/web", "--timeout=60s")
    assert "roll out complete" in out
    _, out, _ = await running.kubectl(
        "wait", "--for=condition=Ready", "pod", "-l", "app=web", "--timeout=60s"
    )
    assert out.count("condition met") == 3
    api.patch(
        "apps/v1/statefulsets",
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.28"}]}}}},
        namespace="default",
    )
    _, out, _ = await running.kubectl("rollout", "status", "statefulset/web", "--timeout=60s")
    assert "roll out complete" in out
    _, images, _ = await running.kubectl(
        "get", "pods", "-o", "jsonpath={.items[*].spec.containers[0].image}"
    )
    assert images.split() == ["nginx:1.28"] * 3
    api.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "default"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "api"}},
                "template": {
                    "metadata": {"labels": {"app": "api"}},
                    "spec": {"containers": [{"name": "main", "image": "app:1"}]},
                },
            },
        }
    )
    _, out, _ = await running.kubectl("rollout", "status", "deployment/api", "--timeout=60s")
    assert 'deployment "api" successfully rolled out' in out


async def test_pod_faults_show_through_kubectl_and_clear(running: Running) -> None:
    running.api.create(sts_manifest(replicas=2))
    await running.kubectl("rollout", "status", "statefulset/web", "--timeout=60s")

    await running.fault("crash-container", "web-0", "--cluster", "east", "--down-for", "0.5")
    restarts = await running.jsonpath("pod", "web-0", "{.status.containerStatuses[0].restartCount}")
    assert restarts == "1"
    await running.kubectl("wait", "--for=condition=Ready", "pod/web-0", "--timeout=30s")

    out = await running.fault("crash-loop", "web-1", "--cluster", "east")
    fault_id = out.split()[0]

    async def looping() -> bool:
        reason = await running.jsonpath(
            "pod", "web-1", "{.status.containerStatuses[0].state.waiting.reason}"
        )
        return reason == "CrashLoopBackOff"

    await eventually(looping, what="CrashLoopBackOff")
    _, events, _ = await running.kubectl(
        "get", "events", "--field-selector", "involvedObject.name=web-1,reason=BackOff"
    )
    assert "Back-off restarting failed container" in events
    assert "active" in await running.fault("list")
    await running.fault("lift", fault_id)
    await running.kubectl("wait", "--for=condition=Ready", "pod/web-1", "--timeout=30s")

    uid = await running.jsonpath("pod", "web-1", "{.metadata.uid}")
    await running.fault("kill-pod", "web-1", "--cluster", "east")

    async def replaced() -> bool:
        rc, out, _ = await running.kubectl(
            "get", "pod", "web-1", "-o", "jsonpath={.metadata.uid}", check=False
        )
        return rc == 0 and out not in ("", uid)

    await eventually(replaced, what="web-1 replaced")
    await running.kubectl("wait", "--for=condition=Ready", "pod/web-1", "--timeout=30s")

    volume = await running.jsonpath("pvc", "data-web-0", "{.spec.volumeName}")
    out = await running.fault("fail-disk", "--cluster", "east", "--volume", volume)
    assert await running.jsonpath("pv", volume, "{.status.phase}") == "Failed"

    async def pod_failed_or_stuck() -> bool:
        _, out, _ = await running.kubectl(
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=web-0",
            "-o",
            "jsonpath={.items[*].reason}",
        )
        return "DiskFailure" in out.split()

    await eventually(pod_failed_or_stuck, what="DiskFailure event on web-0")
    await running.fault("lift", out.split()[0])
    assert await running.jsonpath("pv", volume, "{.status.phase}") == "Bound"
    await eventually(lambda: _ready(running, "web-0"), what="web-0 ready once the disk is back")


async def _ready(running: Running, pod: str) -> bool:
    rc, out, _ = await running.kubectl(
        "get",
        "pod",
        pod,
        "-o",
        'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        check=False,
    )
    return rc == 0 and out == "True"


async def test_node_faults_show_through_kubectl_and_clear(running: Running) -> None:
    ready = '{.status.conditions[?(@.type=="Ready")].status}'
    out = await running.fault("lose-node", "east-node-0", "--cluster", "east")
    lost = out.split()[0]

    async def unknown() -> bool:
        return await running.jsonpath("node", "east-node-0", ready) == "Unknown"

    await eventually(unknown, what="east-node-0 NotReady")
    _, table, _ = await running.kubectl("get", "nodes")
    assert "NotReady" in table
    taints = await running.jsonpath("node", "east-node-0", "{.spec.taints[*].key}")
    assert "node.kubernetes.io/unreachable" in taints
    await running.fault("lift", lost)

    async def back() -> bool:
        return await running.jsonpath("node", "east-node-0", ready) == "True"

    await eventually(back, what="east-node-0 Ready again")

    out = await running.fault("slow-node", "east-node-1", "--cluster", "east", "--factor", "3")
    slow = '{.status.conditions[?(@.type=="KubeletSlow")].status}'
    assert await running.jsonpath("node", "east-node-1", slow) == "True"
    await running.fault("lift", out.split()[0])
    assert await running.jsonpath("node", "east-node-1", slow) == ""


async def test_api_faults_refuse_or_fail_requests_and_clear(running: Running) -> None:
    out = await running.fault("cut-off", "--cluster", "east", "--mode", "refuse")
    rc, _, err = await running.kubectl("get", "namespaces", check=False)
    assert rc != 0 and "refused" in err  # "connection refused" or "… was refused"
    await running.fault("lift", out.split()[0])
    await running.kubectl("get", "namespaces")

    out = await running.fault("cut-off", "--cluster", "east", "--mode", "unavailable")
    rc, _, err = await running.kubectl("get", "namespaces", check=False)
    assert rc != 0 and "cut off" in err
    await running.fault("lift", out.split()[0])
    await running.kubectl("get", "namespaces")

    out = await running.fault("api-errors", "1.0", "--cluster", "east", "--code", "500")
    rc, _, err = await running.kubectl("get", "namespaces", check=False)
    assert rc != 0 and "simulated API server error" in err
    await running.fault("lift", out.split()[0])
    await running.kubectl("get", "namespaces")

    out = await running.fault("api-latency", "0.05", "--cluster", "east", "--duration", "60")
    assert "api-latency" in out and "lifts after 60s" in out
    await running.kubectl("get", "namespaces")
    listed = await running.fault("list")
    assert "api-latency" in listed and "[active" in listed
    await running.fault("lift", "--all")
    assert "[active" not in await running.fault("list")


@pytest.mark.parametrize("mode", ["refuse", "unavailable"])
async def test_cut_off_breaks_open_watches(running: Running, mode: str) -> None:
    sim = running.sim
    assert sim is not None and sim.certificate is not None and running.ctl is not None
    context = ssl.create_default_context(cadata=sim.certificate.ca_pem.decode())
    headers = {"Authorization": f"Bearer {sim.admin_token}"}
    async with httpx.AsyncClient(
        base_url=sim["east"].url, headers=headers, verify=context, timeout=30
    ) as http:
        watch = "/api/v1/namespaces/default/configmaps"
        async with http.stream("GET", watch, params={"watch": "1"}) as response:
            assert response.status_code == 200
            fault = await running.ctl.faults.cut_off("east", mode=mode)
            # A watch left open would run into this bound instead (and fail the test).
            async with asyncio.timeout(20):
                with pytest.raises(httpx.HTTPError):
                    async for _ in response.aiter_lines():
                        pass
        await running.ctl.faults.lift(fault.id)
        assert (await http.get(watch)).status_code == 200


async def test_fault_cli_explains_a_missing_simulator(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "milkyway.cli.sim_fault",
        "list",
        "--kubeconfig",
        str(tmp_path / "kubeconfig"),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "milkyway sim up" in err.decode()


async def test_admin_endpoint_needs_the_admin_token_and_explains_bad_requests(
    running: Running,
) -> None:
    import json

    import httpx

    info = json.loads(admin_file(running.kubeconfig).read_text())
    assert oct(admin_file(running.kubeconfig).stat().st_mode & 0o777) == "0o600"
    async with httpx.AsyncClient() as client:
        anonymous = await client.get(f"{info['url']}/faults")
        assert anonymous.status_code == 401
        wrong = await client.get(f"{info['url']}/faults", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        headers = {"Authorization": f"Bearer {info['token']}"}
        bad = await client.post(
            f"{info['url']}/faults", json={"kind": "lose-node"}, headers=headers
        )
        assert bad.status_code == 400 and "cluster" in bad.json()["error"]
        unknown = await client.post(
            f"{info['url']}/faults", json={"kind": "melt", "cluster": "east"}, headers=headers
        )
        assert unknown.status_code == 400 and "choose one of" in unknown.json()["error"]
        typo = await client.post(
            f"{info['url']}/faults",
            json={"kind": "lose-node", "cluster": "east", "nod": "east-node-0"},
            headers=headers,
        )
        assert typo.status_code == 400 and "nod" in typo.json()["error"]
        listed = await client.get(f"{info['url']}/faults", headers=headers)
        assert listed.json() == {"faults": []}

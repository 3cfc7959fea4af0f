"""Against ``milkyway sim up --run``: kubectl's typed commands, logs -f, exec,
port-forward and pods/proxy on a process-backed pod, as a user types them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import httpx
from tests.polling import eventually

from milkyway.sim.controllers.admin import admin_file

from ..controllers.conftest import ClusterCli

SCRIPT = (
    "echo ready; (i=0; while true; do echo beat $i; i=$((i+1)); sleep 0.5; done) & "
    "exec python3 -m http.server 8080"
)


async def test_kubectl_against_sim_up_with_a_process_backed_pod(tmp_path: Path) -> None:
    cli = ClusterCli(tmp_path / "kubeconfig", tmp_path / "cache")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "milkyway.cli.main",
        "sim",
        "up",
        "--clusters",
        "east",
        "--nodes",
        "1",
        "--kubeconfig",
        str(cli.kubeconfig),
        "--run",
        "example.com/shell:*=sh -c",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    follower = forward = None
    try:
        admin = admin_file(cli.kubeconfig)

        async def started() -> bool:
            return await asyncio.to_thread(admin.exists)

        await eventually(started, what="sim up to start", within=60)
        assert "namespace/apps created" in await cli.output("create", "namespace", "apps")
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "example.com/shell:1",
                        "args": [SCRIPT],
                        "ports": [{"containerPort": 8080}],
                    }
                ]
            },
        }
        await cli.output("apply", "-f", "-", stdin=json.dumps(pod).encode())
        await cli.output("-n", "apps", "wait", "--for=condition=Ready", "pod/web", "--timeout=60s")

        async def serving() -> bool:
            rc, out, _ = await cli.kubectl(
                "get", "--raw", "/api/v1/namespaces/apps/pods/web:8080/proxy/", check=False
            )
            return rc == 0 and "Directory listing" in out

        await eventually(serving, what="the pod's server through pods/proxy", within=60)

        binary = shutil.which("kubectl")
        assert binary is not None
        follower = await asyncio.create_subprocess_exec(
            binary,
            f"--kubeconfig={cli.kubeconfig}",
            f"--cache-dir={cli.cache}",
            "-n",
            "apps",
            "logs",
            "-f",
            "web",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert follower.stdout is not None
        beats = set()
        while len(beats) < 3:
            line = (await asyncio.wait_for(follower.stdout.readline(), 30)).decode()
            assert line, "kubectl logs -f ended while the container runs"
            if line.startswith("beat "):
                beats.add(line)
        assert follower.returncode is None

        out = await cli.output("-n", "apps", "exec", "web", "--", "sh", "-c", "echo in $PWD")
        assert out.startswith("in ")

        forward = await asyncio.create_subprocess_exec(
            binary,
            f"--kubeconfig={cli.kubeconfig}",
            f"--cache-dir={cli.cache}",
            "-n",
            "apps",
            "port-forward",
            "pod/web",
            ":8080",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert forward.stdout is not None
        line = (await asyncio.wait_for(forward.stdout.readline(), 30)).decode()
        local = int(line.split("127.0.0.1:")[1].split()[0])
        async with httpx.AsyncClient(timeout=30) as direct:
            got = await direct.get(f"http://127.0.0.1:{local}/")
        assert got.status_code == 200 and "Directory listing" in got.text
    finally:
        for child in (follower, forward):
            if child is not None and child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()

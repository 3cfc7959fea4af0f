"""Round-trip latency of ``pods/proxy`` against a direct call; prints figures, asserts nothing.

A small HTTP server runs in a child process on a loopback address of its own (as a
process-backed pod does); a pod of a simulated cluster (HTTPS API server in this process)
has that address as its ``status.podIP``. The client, in its own thread, sends sequential
GETs of a small body to the server directly and through
``/api/v1/namespaces/default/pods/<pod>:<port>/proxy/``, over keep-alive connections.

    .venv/bin/python bench/sim_pod_proxy.py [--requests 500]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from milkyway.sim.clusters import SimulatedClusters

POD_IP = "127.0.0.9"
TARGET = """
import sys
from aiohttp import web
async def ok(request):
    return web.Response(body=b"x" * 512)
app = web.Application()
app.router.add_get("/{tail:.*}", ok)
web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), print=None, access_log=None)
"""


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_listening(host: str, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the target server did not listen on {host}:{port}")


def measure(client: httpx.Client, url: str, count: int) -> list[float]:
    for _ in range(20):
        client.get(url).raise_for_status()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        client.get(url).raise_for_status()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{label:<28} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   ({len(samples)} requests)"


async def main(count: int) -> None:
    port = free_port(POD_IP)
    target = await asyncio.create_subprocess_exec(sys.executable, "-c", TARGET, POD_IP, str(port))
    try:
        await asyncio.to_thread(wait_listening, POD_IP, port)
        with tempfile.TemporaryDirectory() as folder:
            async with SimulatedClusters(["bench"], kubeconfig_path=Path(folder) / "kc") as sim:
                api = sim["bench"].api
                api.create(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": "agent", "namespace": "default"},
                        "spec": {"containers": [{"name": "main", "image": "agent:1"}]},
                    }
                )
                api.patch(
                    "pods",
                    "agent",
                    {"status": {"phase": "Running", "podIP": POD_IP}},
                    namespace="default",
                    subresource="status",
                )
                assert sim.certificate is not None
                context = ssl.create_default_context(cadata=sim.certificate.ca_pem.decode())
                proxied = (
                    f"{sim['bench'].url}/api/v1/namespaces/default/pods/agent:{port}/proxy/health"
                )

                def run() -> tuple[list[float], list[float]]:
                    with (
                        httpx.Client() as direct_client,
                        httpx.Client(
                            verify=context,
                            headers={"Authorization": f"Bearer {sim.admin_token}"},
                        ) as proxy_client,
                    ):
                        direct = measure(direct_client, f"http://{POD_IP}:{port}/health", count)
                        through = measure(proxy_client, proxied, count)
                    return direct, through

                direct, through = await asyncio.to_thread(run)
        print(summary("direct GET (baseline)", direct))
        print(summary("GET through pods/proxy", through))
        print(
            f"{'added by the proxy':<28} p50 "
            f"{statistics.median(through) - statistics.median(direct):7.2f} ms"
        )
    finally:
        target.terminate()
        await target.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    asyncio.run(main(parser.parse_args().requests))

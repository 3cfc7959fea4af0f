"""Throughput and memory of the simulated API server; prints figures, asserts nothing.

HTTP figures are measured against ``milkyway sim up`` running in its own process (so client
and server do not share a core's event loop), with an aiohttp client keeping
``--concurrency`` requests in flight. Memory is measured in this process: 30,000 pods over
10 clusters created through the in-process API, RSS before and after.

    .venv/bin/python bench/sim_apiserver.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil
import yaml

from milkyway.sim.apiserver.api import ClusterAPI


def pod(name: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "bench"}},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "registry.example.com/bench:1.0",
                    "ports": [{"containerPort": 8080}],
                    "env": [{"name": "MODE", "value": "bench"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }
            ]
        },
    }


class Server:
    """``milkyway sim up`` in a child process, and an HTTP session to it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.token = ""
        self.ssl: ssl.SSLContext | None = None

    def start(self) -> None:
        kubeconfig = self.folder / "kubeconfig"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "milkyway.cli.main",
                "sim",
                "up",
                "--clusters",
                "bench",
                "--kubeconfig",
                str(kubeconfig),
                "--nodes",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while not kubeconfig.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("milkyway sim up did not start; run it by hand to see why")
            time.sleep(0.1)
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        self.url = cluster["server"]
        self.token = config["users"][0]["user"]["token"]
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        self.ssl = ssl.create_default_context(cadata=ca)

    def rss_mb(self) -> float:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


async def rate(
    label: str, count: int, concurrency: int, one: Callable[[int], Awaitable[None]]
) -> float:
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            await one(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    per_second = count / (time.perf_counter() - start)
    print(f"{label:<44} {per_second:>10,.0f} req/s")
    return per_second


async def http_figures(server: Server, args: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {server.token}"}
    connector = aiohttp.TCPConnector(ssl=server.ssl, limit=args.concurrency)
    base = f"{server.url}/api/v1/namespaces/default"
    async with aiohttp.ClientSession(headers=headers, connector=connector) as http:

        async def create(i: int) -> None:
            async with http.post(f"{base}/pods", json=pod(f"p-{i}")) as r:
                assert r.status == 201, await r.text()

        async def get(i: int) -> None:
            async with http.get(f"{base}/pods/p-{i % 100}") as r:
                assert r.status == 200
                await r.read()

        async def patch(i: int) -> None:
            body = json.dumps({"metadata": {"labels": {"n": str(i)}}})
            headers = {"Content-Type": "application/merge-patch+json"}
            async with http.patch(f"{base}/pods/p-{i % 100}", data=body, headers=headers) as r:
                assert r.status == 200, await r.text()

        figures["create"] = await rate("create pod (HTTP)", args.small, args.concurrency, create)
        figures["get"] = await rate("get pod (HTTP)", args.small * 2, args.concurrency, get)
        figures["patch"] = await rate("merge-patch pod (HTTP)", args.small, args.concurrency, patch)

        for target in (1_000, 10_000):
            ns = f"list-{target}"
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            async with http.post(f"{server.url}/api/v1/namespaces", json=body) as r:
                assert r.status == 201, await r.text()

            async def seed(i: int, ns: str = ns) -> None:
                url = f"{server.url}/api/v1/namespaces/{ns}/pods"
                async with http.post(url, json=pod(f"p-{i}", ns)) as r:
                    assert r.status == 201, await r.text()

            await rate(f"  (seeding {target:,} pods)", target, args.concurrency, seed)
            runs = 5 if target == 1_000 else 3
            start = time.perf_counter()
            for _ in range(runs):
                async with http.get(f"{server.url}/api/v1/namespaces/{ns}/pods") as r:
                    items = orjson.loads(await r.read())["items"]
                    assert len(items) == target
            seconds = (time.perf_counter() - start) / runs
            figures[f"list{target}"] = seconds
            print(f"{f'list {target:,} pods (HTTP)':<44} {seconds:>10.3f} s/list")

    watch_connector = aiohttp.TCPConnector(ssl=server.ssl, limit=0)
    async with aiohttp.ClientSession(headers=headers, connector=watch_connector) as watch_http:
        figures["watch"] = await watch_fanout(watch_http, base, args)
    return figures


async def watch_fanout(http: aiohttp.ClientSession, base: str, args: argparse.Namespace) -> float:
    writes = args.watch_writes
    async with http.get(f"{base}/configmaps") as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    done = asyncio.Event()
    received = [0]
    total = writes * args.watchers

    async def watcher() -> None:
        params = {"watch": "1", "resourceVersion": rv}
        async with http.get(f"{base}/configmaps", params=params, timeout=None) as r:
            seen = 0
            async for _line in r.content:
                seen += 1
                received[0] += 1
                if received[0] >= total:
                    done.set()
                if seen >= writes:
                    return

    tasks = [asyncio.create_task(watcher()) for _ in range(args.watchers)]
    await asyncio.sleep(1.0)
    start = time.perf_counter()

    async def write(i: int) -> None:
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}}
        async with http.post(f"{base}/configmaps", json=cm) as r:
            assert r.status == 201

    await rate("create configmap while watched (HTTP)", writes, 4, write)
    await asyncio.wait_for(done.wait(), 300)
    delivered = total / (time.perf_counter() - start)
    await asyncio.gather(*tasks)
    print(f"{f'watch fan-out to {args.watchers} watchers':<44} {delivered:>10,.0f} events/s")
    return delivered


def memory_figures(args: argparse.Namespace) -> dict[str, float]:
    gc.collect()
    process = psutil.Process(os.getpid())
    before = process.memory_info().rss / 2**20
    apis = [ClusterAPI(name=f"cluster-{i}") for i in range(10)]
    per_cluster = args.pods // 10
    start = time.perf_counter()
    for api in apis:
        for i in range(per_cluster):
            api.create(pod(f"p-{i}"))
    seconds = time.perf_counter() - start
    gc.collect()
    after = process.memory_info().rss / 2**20
    print(f"{'create pod (in-process)':<44} {args.pods / seconds:>10,.0f} req/s")
    print(
        f"{f'RSS for {args.pods:,} pods in 10 clusters':<44} {after:>10,.0f} MB "
        f"({after - before:,.0f} MB for the objects)"
    )
    big = ClusterAPI(name="list")
    for i in range(10_000):
        big.create(pod(f"p-{i}"))
    start = time.perf_counter()
    body = orjson.dumps(big.list_stored(big.resource("pods")))
    print(
        f"{'list + encode 10,000 pods (server side)':<44} "
        f"{time.perf_counter() - start:>10.3f} s ({len(body) / 2**20:.1f} MiB)"
    )
    return {"rss": after, "inproc_create": args.pods / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    args.small = 500 if args.quick else 2_000
    args.watchers = 50
    args.watch_writes = 100 if args.quick else 500
    args.pods = 3_000 if args.quick else 30_000
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        server.start()
        try:
            print(f"server: {server.url} (pid {server.proc.pid if server.proc else '?'})")
            figures = asyncio.run(http_figures(server, args))
            print(f"{'server RSS after the HTTP runs':<44} {server.rss_mb():>10,.0f} MB")
        finally:
            server.stop()
    memory = memory_figures(args)
    print(
        "\nagainst the aims: creates/s vs 1,000: "
        f"{figures['create'] / 1000:.2f}x; 10k list vs 1 s: {figures['list10000']:.2f}x; "
        f"RSS vs 2 GB for 30k pods: {memory['rss'] / 2048 * 30_000 / args.pods:.2f}x "
        "(scaled to 30k)"
    )
    print(f"HTTP vs in-process create: {figures['create'] / memory['inproc_create']:.2f}x")


if __name__ == "__main__":
    main()

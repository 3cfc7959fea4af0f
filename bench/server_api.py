"""Figures for ``milkyway server``; prints them, asserts nothing.

* p50/p99 latency of list, get and create through the REST API under 200 concurrent
  local clients (static bearer tokens, impersonation to a simulated management cluster
  with RBAC), and the same operations made directly against the simulated API server with
  lightkube as the baseline (no authentication, no impersonation, no audit);
* sign-in latency: LDAP password sign-in against a real slapd, the server's own session
  token check, and Keystone token validation with and without the token cache (a real
  Keystone, when ``scripts/keystone.sh`` has installed it; ``--no-keystone`` skips it);
* audit appends per second on SQLite and on PostgreSQL (one writer, then 8 threads).

The simulator and the server run on one event loop in a thread of this process, the
clients on another: on a small machine the figures include that sharing.

    .venv/bin/python bench/server_api.py [--clients 200] [--requests 5] [--no-keystone]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import uvicorn
from lightkube import AsyncClient, KubeConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.server.conftest import (  # noqa: E402
    Front,
    application,
    start_front,
    stop_front,
)
from tests.integration.server.directory import running_directory  # noqa: E402
from tests.integration.server.postgres import running_postgres  # noqa: E402

from milkyway.kube.resources import APPLICATION  # noqa: E402
from milkyway.server.audit import AuditLog, AuditRecord  # noqa: E402


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {p50 * 1000:9.3f} ms  p99 {p99 * 1000:9.3f} ms  (n={len(ordered)})"


class Backend:
    """The simulator and the server on their own loop in a thread."""

    def __init__(self, folder: Path, **settings: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.folder = folder
        self.settings = settings
        self.front: Front | None = None
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        front, _ = await start_front(self.folder, **self.settings)
        config = uvicorn.Config(
            front.app,
            host="127.0.0.1",
            port=0,
            log_level="error",
            lifespan="off",
            backlog=1024,
            timeout_keep_alive=300,
            limit_concurrency=None,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        for _ in range(2400):
            if server.started:
                break
            await asyncio.sleep(0.05)
        self.front, self._server = front, server
        self.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        self._ready.set()
        await task
        await stop_front(front)

    def __enter__(self) -> Backend:
        self._thread.start()
        if not self._ready.wait(300):
            raise RuntimeError("the server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.should_exit = True
        self._thread.join(120)


async def load(
    clients: int, requests: int, call: Callable[[int, int], Awaitable[None]]
) -> list[float]:
    samples: list[float] = []

    async def one(client: int) -> None:
        for i in range(requests):
            start = time.perf_counter()
            await call(client, i)
            samples.append(time.perf_counter() - start)

    await asyncio.gather(*(one(c) for c in range(clients)))
    return samples


async def api_figures(backend: Backend, clients: int, requests: int) -> None:
    assert backend.front is not None
    token = backend.front.tokens["alice"]
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(
        base_url=backend.url,
        headers={"Authorization": f"Bearer {token}"},
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=600),
    ) as http:
        base = "/api/v1/namespaces/team-a/applications"

        async def create(c: int, i: int) -> None:
            async with http.post(base, json=application(f"b-{c}-{i}", "team-a")) as r:
                assert r.status == 201, await r.text()

        async def get(c: int, i: int) -> None:
            async with http.get(f"{base}/b-{c}-{i}") as r:
                assert r.status == 200, await r.text()

        async def list_page(c: int, i: int) -> None:
            params = {"namespace": "team-a", "limit": "50"}
            async with http.get("/api/v1/applications", params=params) as r:
                assert r.status == 200, await r.text()
                await r.read()

        for name, call in (("create", create), ("get", get), ("list (50)", list_page)):
            started = time.perf_counter()
            samples = await load(clients, requests, call)
            rate = len(samples) / (time.perf_counter() - started)
            print(f"  REST {name:10s} {percentiles(samples)}  {rate:6.0f} req/s")


async def direct_figures(backend: Backend, clients: int, requests: int) -> None:
    """The baseline: lightkube straight to the simulated API server as the admin."""
    assert backend.front is not None
    config = KubeConfig.from_file(backend.front.sim.kubeconfig_path).get("mgmt")
    client = AsyncClient(config)
    try:

        async def create(c: int, i: int) -> None:
            await client.create(APPLICATION(application(f"d-{c}-{i}", "team-b")))

        async def get(c: int, i: int) -> None:
            await client.get(APPLICATION, f"d-{c}-{i}", namespace="team-b")

        async def list_page(c: int, i: int) -> None:
            n = 0
            async for _ in client.list(APPLICATION, namespace="team-b", chunk_size=50):
                n += 1
                if n >= 50:
                    break

        for name, call in (("create", create), ("get", get), ("list (50)", list_page)):
            started = time.perf_counter()
            samples = await load(clients, requests, call)
            rate = len(samples) / (time.perf_counter() - started)
            print(f"  direct {name:8s} {percentiles(samples)}  {rate:6.0f} req/s")
    finally:
        await client.close()


async def sign_in_figures(backend: Backend, rounds: int) -> None:
    assert backend.front is not None
    async with httpx.AsyncClient(base_url=backend.url, timeout=60) as http:
        samples, tokens = [], []
        for i in range(rounds):
            user, password = ("alice", "alice-pw-1") if i % 2 else ("bob", "bob-pw-2")
            backend.front.state.limiter._buckets.clear()
            start = time.perf_counter()
            r = await http.post("/api/v1/login", json={"username": user, "password": password})
            samples.append(time.perf_counter() - start)
            assert r.status_code == 200, r.text
            tokens.append(r.json()["token"])
        print(f"  LDAP password sign-in      {percentiles(samples)}")
        samples = []
        for i in range(rounds * 5):
            start = time.perf_counter()
            r = await http.get(
                "/api/v1/whoami", headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
            )
            samples.append(time.perf_counter() - start)
            assert r.status_code == 200
        print(f"  session token check        {percentiles(samples)}  (GET /whoami)")


async def keystone_figures(rounds: int, folder: Path) -> None:
    from tests.integration.server.keystone import running_keystone

    from milkyway.server.authn.keystone import KeystoneAuthenticator, KeystoneSettings

    with running_keystone(folder) as ks:
        ks.call(
            "POST",
            "/users",
            {"user": {"name": "kate", "password": "kate-pw-9", "domain_id": "default"}},
        )
        auth = KeystoneAuthenticator(KeystoneSettings(url=ks.url))
        try:
            samples = []
            for _ in range(rounds):
                start = time.perf_counter()
                assert await auth.authenticate("kate", "kate-pw-9")
                samples.append(time.perf_counter() - start)
            print(f"  Keystone password sign-in  {percentiles(samples)}")
            async with httpx.AsyncClient(timeout=60) as plain:
                body = {
                    "auth": {
                        "identity": {
                            "methods": ["password"],
                            "password": {
                                "user": {
                                    "name": "kate",
                                    "domain": {"id": "default"},
                                    "password": "kate-pw-9",
                                }
                            },
                        }
                    }
                }
                token = (await plain.post(f"{ks.url}/auth/tokens", json=body)).headers[
                    "X-Subject-Token"
                ]
            for cached in (False, True):
                samples = []
                for _ in range(rounds * (5 if cached else 1)):
                    if not cached:
                        auth.forget_cache()
                    start = time.perf_counter()
                    assert await auth.authenticate_token(token)
                    samples.append(time.perf_counter() - start)
                label = "with cache" if cached else "no cache  "
                print(f"  Keystone token {label}  {percentiles(samples)}")
        finally:
            await auth.close()


def audit_figures(url: str, label: str, seconds: float = 3.0) -> None:
    log = AuditLog(url)

    def record(i: int) -> AuditRecord:
        return AuditRecord(
            request_id=f"r{i}",
            actor="alice",
            action="scale",
            target="t",
            decision="allowed",
            result=200,
            groups=["team-a"],
        )

    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        log.append_sync(record(count))
        count += 1
    single = count / (time.perf_counter() - start)
    logs = [AuditLog(url) for _ in range(8)]
    counter = [0]
    deadline = time.perf_counter() + seconds

    def writer(index: int) -> None:
        while time.perf_counter() < deadline:
            logs[index].append_sync(record(index))
            counter[0] += 1

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(writer, range(8)))

    async def burst() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(log.append(record(i)) for i in range(2000)))
        return 2000 / (time.perf_counter() - started)

    grouped = asyncio.run(burst())
    findings, _, rows = log.verify()
    print(f"  {label:10s} {grouped:7.0f} appends/s from 2,000 concurrent requests (group commit)")
    print(
        f"  {label:10s} {single:7.0f} appends/s one writer, {counter[0] / seconds:7.0f} "
        f"appends/s 8 writers ({len(logs)} engines); chain of {rows} rows intact: "
        f"{not findings}"
    )
    for other in logs:
        other.close()
    log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=5, help="per client and operation")
    parser.add_argument("--no-keystone", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="milkyway-bench-server-"))
    with running_directory(folder / "ldap") as directory:
        from tests.integration.server.test_ldap import ldap_settings

        with Backend(folder / "front", ldap=ldap_settings(directory.url)) as backend:
            print(f"== REST API, {args.clients} concurrent clients x {args.requests} requests")
            asyncio.run(api_figures(backend, args.clients, args.requests))
            print("== the same operations straight to the simulated API server (baseline)")
            asyncio.run(direct_figures(backend, args.clients, args.requests))
            print("== sign-in")
            asyncio.run(sign_in_figures(backend, 40))
    if not args.no_keystone:
        asyncio.run(keystone_figures(30, folder / "keystone"))
    print("== audit appends")
    audit_figures(f"sqlite:///{folder / 'audit.db'}", "SQLite")
    with running_postgres() as url:
        audit_figures(url, "PostgreSQL")


if __name__ == "__main__":
    main()

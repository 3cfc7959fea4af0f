"""Figures for the web console; prints them, asserts nothing.

* time to first render and to live data of the applications page and of an application
  page with 1,000 Applications in the store, in Debian's Chromium driven by Playwright:
  first render = from navigation to the table holding all 1,000 rows (the page reads
  them in pages of 500) or to the application's topology drawn; live data = from a write
  to the management cluster (an Application's status) to that change on screen, carried
  by the server's event stream;
* event-stream fan-out: 100 open streams of ``/api/v1/events/applications`` (what 100
  open consoles hold), the latency from a write to its event at each stream, against one
  stream alone as the baseline.

The simulated management cluster (RBAC on) and the server run on one event loop in a
thread of this process; the browser is a separate process. The browser's session cookie
is minted with the server's own signer (sign-in itself is measured by server_api.py).

    .venv/bin/python bench/console.py [--apps 1000] [--streams 100] [--writes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from lightkube import AsyncClient, KubeConfig
from lightkube.types import PatchType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.server_api import Backend  # noqa: E402
from tests.integration.server.conftest import application, bind  # noqa: E402

from milkyway.kube.resources import APPLICATION  # noqa: E402
from milkyway.server.identity import Identity  # noqa: E402

NAMESPACE = "team-a"
CHROMIUM = "/usr/bin/chromium"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.0f} ms"


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {ms(statistics.median(ordered))}  p99 {ms(p99)}  (n={len(ordered)})"


class Store:
    """The admin's client on the backend's loop: fills and changes the store."""

    def __init__(self, backend: Backend) -> None:
        assert backend.front is not None
        self.backend = backend
        self.kubeconfig = backend.front.sim.kubeconfig_path
        self.client: AsyncClient | None = None

    def run(self, coro: Any, timeout: float = 1800) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.backend.loop).result(timeout)

    async def _client(self) -> AsyncClient:
        if self.client is None:
            self.client = AsyncClient(KubeConfig.from_file(self.kubeconfig).get("mgmt"))
        return self.client

    async def fill(self, count: int) -> None:
        client = await self._client()
        gate = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with gate:
                name = f"app-{i:04d}"
                await client.create(APPLICATION(application(name, NAMESPACE)))
                await self.set_status(name, "Running", "13/13")

        await asyncio.gather(*(one(i) for i in range(count)))

    async def set_status(self, name: str, phase: str, ready: str) -> None:
        client = await self._client()
        status = {"phase": phase, "readyMembers": ready, "observedGeneration": 1}
        await client.patch(
            APPLICATION.Status,
            name,
            {"status": status},
            namespace=NAMESPACE,
            patch_type=PatchType.MERGE,
        )

    async def label(self, name: str, value: str) -> None:
        client = await self._client()
        await client.patch(
            APPLICATION,
            name,
            {"metadata": {"labels": {"bench": value}}},
            namespace=NAMESPACE,
            patch_type=PatchType.MERGE,
        )


def browser_figures(backend: Backend, store: Store, apps: int, rounds: int) -> None:
    from playwright.sync_api import sync_playwright

    assert backend.front is not None
    token, _ = backend.front.state.signer.issue(Identity("carol", ("platform",), "ldap"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        # bypass_csp: Playwright evaluates the wait predicates as strings, which the
        # console's Content-Security-Policy (rightly) forbids to page scripts.
        context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        context.add_cookies(
            [
                {
                    "name": "milkyway_session",
                    "value": token,
                    "url": backend.url,
                    "httpOnly": True,
                    "secure": True,
                    "sameSite": "Strict",
                }
            ]
        )
        context.set_default_timeout(300_000)
        table_first: list[float] = []
        table_live: list[float] = []
        app_first: list[float] = []
        app_live: list[float] = []
        page = context.new_page()
        for _ in range(rounds):
            start = time.perf_counter()
            page.goto(f"{backend.url}/console/#/applications")
            page.wait_for_function(
                f"document.getElementById('count')?.textContent === '{apps} of {apps} "
                "Applications'",
                polling="raf",
            )
            table_first.append(time.perf_counter() - start)
            page.goto("about:blank")
        page.goto(f"{backend.url}/console/#/applications")
        page.wait_for_function(
            f"document.getElementById('count')?.textContent === '{apps} of {apps} Applications'"
        )
        page.wait_for_timeout(1000)  # the streams are open
        row = f"tr[data-key='{NAMESPACE}/app-0500']"
        for i in range(rounds):
            phase = ("Updating", "Degraded", "Running")[i % 3]
            start = time.perf_counter()
            store.run(store.set_status("app-0500", phase, f"{i}/13"))
            page.wait_for_function(
                f"document.querySelector(\"{row}\")?.textContent.includes('{i}/13')",
                polling="raf",
            )
            table_live.append(time.perf_counter() - start)
        for _ in range(rounds):
            page.goto("about:blank")
            start = time.perf_counter()
            page.goto(f"{backend.url}/console/#/applications/{NAMESPACE}/app-0500")
            page.wait_for_selector("#topology li.member", state="attached")
            app_first.append(time.perf_counter() - start)
        page.wait_for_timeout(1000)
        for i in range(rounds):
            start = time.perf_counter()
            store.run(store.set_status("app-0500", "Running", f"{i + 100}/13"))
            page.wait_for_function(
                f"document.getElementById('summary')?.textContent.includes('{i + 100}/13')",
                polling="raf",
            )
            app_live.append(time.perf_counter() - start)
        browser.close()
    print(f"applications page, first render ({apps} rows):  {summary(table_first)}")
    print(f"applications page, live data (write -> row):   {summary(table_live)}")
    print(f"application page, first render (topology):     {summary(app_first)}")
    print(f"application page, live data (write -> page):   {summary(app_live)}")


async def fan_out(backend: Backend, store: Store, streams: int, writes: int) -> None:
    """Open ``streams`` event streams, make ``writes`` changes, time each delivery."""
    assert backend.front is not None
    token, _ = backend.front.state.signer.issue(Identity("carol", ("platform",), "ldap"))
    received: list[dict[str, float]] = [{} for _ in range(streams)]
    connected = asyncio.Event()
    opened = 0
    limits = httpx.Limits(max_connections=streams + 10)

    async with httpx.AsyncClient(
        base_url=backend.url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(600),
        limits=limits,
    ) as http:

        async def listen(i: int) -> None:
            nonlocal opened
            async with http.stream(
                "GET", "/api/v1/events/applications", params={"namespace": NAMESPACE}
            ) as response:
                lines = response.aiter_lines()
                await anext(lines)
                opened += 1
                if opened == streams:
                    connected.set()
                async for line in lines:
                    if line.startswith("data:") and '"bench":"w' in line:
                        marker = line.split('"bench":"', 1)[1].split('"', 1)[0]
                        received[i].setdefault(marker, time.perf_counter())
                        if len(received[i]) == writes:
                            return

        tasks = [asyncio.create_task(listen(i)) for i in range(streams)]
        await asyncio.wait_for(connected.wait(), 600)
        sent: dict[str, float] = {}
        for w in range(writes):
            marker = f"w{w}"
            sent[marker] = time.perf_counter()
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(store.label("app-0001", marker), backend.loop)
            )
            await asyncio.sleep(0.5)
        await asyncio.wait_for(asyncio.gather(*tasks), 600)
    each = [got[m] - sent[m] for got in received for m in sent]
    last = [max(got[m] for got in received) - sent[m] for m in sent]
    label = f"{streams} stream{'s' if streams > 1 else ''}"
    print(f"event fan-out, {label:11} write -> each stream:  {summary(each)}")
    print(f"event fan-out, {label:11} write -> last stream:  {summary(last)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as folder, Backend(Path(folder)) as backend:
        assert backend.front is not None
        store = Store(backend)
        front = backend.front
        store.run(front.apply(bind_everywhere()))
        started = time.perf_counter()
        store.run(store.fill(args.apps))
        print(f"store filled: {args.apps} Applications in {time.perf_counter() - started:.1f} s")
        browser_figures(backend, store, args.apps, args.rounds)
        asyncio.run(fan_out(backend, store, 1, args.writes))
        asyncio.run(fan_out(backend, store, args.streams, args.writes))
        if store.client is not None:
            store.run(store.client.close())


def bind_everywhere() -> dict[str, Any]:
    """carol (platform) may read Applications in every namespace, as the console's
    unfiltered table needs."""
    doc = bind(NAMESPACE, "milkyway-viewer", group="platform")
    doc["kind"] = "ClusterRoleBinding"
    doc["metadata"] = {"name": "bench-viewer-platform"}
    return doc


if __name__ == "__main__":
    main()

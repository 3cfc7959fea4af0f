"""Hostile-input figures: how fast bad documents are refused, and what the other clusters of
the process see meanwhile.

* the simulated API server: alias bombs of 6 to 9 levels (YAML bodies), a body nested
  200,000 deep, a CRD with a nested ``all()`` rule and a custom resource whose rules are
  over the request budget; for each, the answer, its time, and the slowest answer another
  cluster gave to GETs sent every 10 ms meanwhile (baseline: the same GETs while nothing
  else runs);
* ``milkyway validate`` (in-process) on a billion-laughs file, a recursive alias, a file
  nested 1,000 deep and a 2 MB value, against the talk's Application as the baseline.

Run: ``.venv/bin/python bench/hostile_input.py``. Prints figures only; nothing here is
asserted by the test suite.
"""

from __future__ import annotations

import asyncio
import ssl
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import typer.testing
from typer.testing import CliRunner

from milkyway.cli.main import app
from milkyway.sim.clusters import SimulatedClusters

ROOT = Path(__file__).resolve().parents[1]
CMS = "/api/v1/namespaces/default/configmaps"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
RULE = "self.items.all(x, self.items.all(y, self.items.all(z, x + y + z != '')))"


def alias_bomb(levels: int) -> str:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb}", "data:"]
    lines.append("  l0: &a0 [" + ", ".join(['"lol"'] * 9) + "]")
    lines += [f"  l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def crd(**bounds: Any) -> dict[str, Any]:
    spec = {
        "type": "object",
        "x-kubernetes-validations": [{"rule": RULE}],
        "properties": {"items": {"type": "array", "items": {"type": "string"}, **bounds}},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec}}},
                }
            ],
        },
    }


async def while_asking(
    other: httpx.AsyncClient, work: Callable[[], Awaitable[httpx.Response]]
) -> tuple[httpx.Response, float, float]:
    """``work``'s response and time, and the slowest GET of ``other`` meanwhile."""
    latencies: list[float] = []
    stop = asyncio.Event()

    async def ask() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await other.get("/api/v1/namespaces")
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)

    asker = asyncio.create_task(ask())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    response = await work()
    elapsed = time.perf_counter() - started
    stop.set()
    await asker
    return response, elapsed, max(latencies, default=0.0)


async def simulator_figures() -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with SimulatedClusters(["c1", "c2"], kubeconfig_path=Path(folder) / "kc") as sim:
            assert sim.certificate is not None
            context = ssl.create_default_context(cadata=sim.certificate.ca_pem.decode())
            headers = {"Authorization": f"Bearer {sim.admin_token}"}

            def client(name: str) -> httpx.AsyncClient:
                return httpx.AsyncClient(
                    base_url=sim[name].url, headers=headers, verify=context, timeout=120
                )

            async with client("c1") as c1, client("c2") as c2:
                baseline = []
                for _ in range(50):
                    started = time.perf_counter()
                    await c2.get("/api/v1/namespaces")
                    baseline.append(time.perf_counter() - started)
                print(
                    f"other cluster GET, idle: median {statistics.median(baseline) * 1000:.1f} "
                    f"ms, max {max(baseline) * 1000:.1f} ms"
                )
                yaml_headers = {"Content-Type": "application/yaml"}
                cases: list[tuple[str, Callable[[], Awaitable[httpx.Response]]]] = [
                    (
                        f"{levels}-level alias bomb ({len(alias_bomb(levels))} bytes)",
                        lambda levels=levels: c1.post(
                            CMS, content=alias_bomb(levels), headers=yaml_headers
                        ),
                    )
                    for levels in (6, 7, 8, 9)
                ]
                deep = "a: " + "[" * 200_000 + "]" * 200_000
                cases.append(
                    (
                        "YAML nested 200,000 deep",
                        lambda: c1.post(CMS, content=deep, headers=yaml_headers),
                    )
                )
                flat = (
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flat}\nx: ["
                    + ",".join(["0"] * 200_000)
                    + "]\n"
                )
                cases.append(
                    (
                        f"flat YAML body ({len(flat) // 1024} KiB, 200,000 items)",
                        lambda: c1.post(CMS, content=flat, headers=yaml_headers),
                    )
                )
                cases.append(
                    ("CRD with nested all() on unbounded list", lambda: c1.post(CRDS, json=crd()))
                )
                for name, work in cases:
                    response, elapsed, slowest = await while_asking(c2, work)
                    print(
                        f"{name}: {response.status_code} in {elapsed * 1000:.0f} ms; other "
                        f"cluster's slowest GET {slowest * 1000:.0f} ms"
                    )
                await c1.post(CRDS, json=crd(maxItems=60))
                widget = {
                    "apiVersion": "example.com/v1",
                    "kind": "Widget",
                    "metadata": {"name": "w"},
                    "spec": {"items": [str(i) for i in range(60)]},
                }
                response, elapsed, slowest = await while_asking(
                    c2,
                    lambda: c1.post("/apis/example.com/v1/namespaces/default/widgets", json=widget),
                )
                print(
                    f"custom resource over the CEL budget (60 items, triple all()): "
                    f"{response.status_code} in {elapsed * 1000:.0f} ms; other cluster's "
                    f"slowest GET {slowest * 1000:.0f} ms"
                )


def validate_figures() -> None:
    command = typer.testing._get_command(app)
    typer.testing._get_command = lambda _app: command  # build the Click command once
    runner = CliRunner()
    stream1 = (ROOT / "examples" / "stream1.yaml").read_text()
    laughs = ["a0: &a0 [" + ", ".join(['"lol"'] * 9) + "]"]
    laughs += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    files = {
        "the talk's Application (baseline)": stream1,
        "billion laughs (9 levels)": "\n".join(laughs) + "\n",
        "recursive alias": "a: &a\n  b: *a\n",
        "nested 1,000 deep": "a: " + "[" * 1000 + "]" * 1000 + "\n",
        "2 MB value": stream1.replace("name: stream1", "name: " + "x" * 2_000_000, 1),
    }
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "app.yaml"
        for name, text in files.items():
            file.write_text(text)
            runner.invoke(app, ["validate", "-f", str(file)])
            started = time.perf_counter()
            result = runner.invoke(app, ["validate", "-f", str(file)])
            elapsed = time.perf_counter() - started
            print(
                f"validate {name}: exit {result.exit_code} in {elapsed * 1000:.0f} ms, "
                f"{len(result.output)} characters of output"
            )


if __name__ == "__main__":
    asyncio.run(simulator_figures())
    validate_figures()

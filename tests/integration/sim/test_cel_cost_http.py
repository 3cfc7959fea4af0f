"""CEL rule cost over HTTP: a CRD with a rule too costly for its schema is a 422 with the
real server's message; a custom resource whose rules would run past the request budget
is a 422 at once, and the other simulated clusters keep answering meanwhile."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import httpx

from milkyway.sim.clusters import SimulatedClusters

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
NESTED_ALL = "self.items.all(x, self.items.all(y, self.items.all(z, x + y + z != '')))"


def crd(**bounds: Any) -> dict[str, Any]:
    spec = {
        "type": "object",
        "x-kubernetes-validations": [{"rule": NESTED_ALL}],
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


def _client(sim: SimulatedClusters, cluster: str) -> httpx.AsyncClient:
    assert sim.certificate is not None
    context = ssl.create_default_context(cadata=sim.certificate.ca_pem.decode())
    headers = {"Authorization": f"Bearer {sim.admin_token}"}
    return httpx.AsyncClient(base_url=sim[cluster].url, headers=headers, verify=context, timeout=60)


async def test_a_costly_rule_makes_the_crd_invalid(sim: SimulatedClusters) -> None:
    async with _client(sim, "c1") as c1:
        response = await c1.post(CRDS, json=crd())
        assert response.status_code == 422, response.text[:300]
        status = response.json()
        assert "estimated rule cost exceeds budget by factor of" in status["message"]
        (cause,) = status["details"]["causes"]
        assert cause["field"].endswith(
            "openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
        )
        assert (await c1.get(f"{CRDS}/widgets.example.com")).status_code == 404


async def test_a_rule_past_the_budget_is_refused_while_other_clusters_answer(
    sim: SimulatedClusters,
) -> None:
    async with _client(sim, "c1") as c1, _client(sim, "c2") as c2:
        assert (await c1.post(CRDS, json=crd(maxItems=60))).status_code == 201
        widget = {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"items": [str(i) for i in range(60)]},
        }
        latencies: list[float] = []
        stop = asyncio.Event()

        async def ask() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                assert (await c2.get("/api/v1/namespaces")).status_code == 200
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)

        asker = asyncio.create_task(ask())
        try:
            for _ in range(3):
                response = await c1.post(WIDGETS, json=widget)
                assert response.status_code == 422, response.text[:300]
                assert "running out of cost budget" in response.json()["message"]
        finally:
            stop.set()
            await asker
        small = {**widget, "spec": {"items": ["a", "b"]}}
        assert (await c1.post(WIDGETS, json=small)).status_code == 201
        print(f"other cluster: {len(latencies)} answers, slowest {max(latencies, default=0):.3f}s")

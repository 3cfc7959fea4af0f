"""Every request to an API server is counted and, unless it is a watch, timed."""

from __future__ import annotations

import asyncio

import httpx2
from lightkube.resources.core_v1 import ConfigMap

from milkyway.kube.clients import client_from_kubeconfig
from milkyway.telemetry import REGISTRY

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "timed", "cluster": {"server": "http://127.0.0.1:1"}}],
    "users": [{"name": "admin", "user": {"token": "t0k3n"}}],
    "contexts": [{"name": "timed", "context": {"cluster": "timed", "user": "admin"}}],
    "current-context": "timed",
}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_requests_are_timed_until_their_answer_and_watches_only_counted() -> None:
    async def answer(request: httpx2.Request) -> httpx2.Response:
        await asyncio.sleep(0.05)
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "ns"},
        }
        return httpx2.Response(200, json=body)

    client = client_from_kubeconfig(KUBECONFIG, "timed")
    http = client._client._client
    http._transport = httpx2.MockTransport(answer)
    count = "milkyway_kube_api_request_seconds_count"
    total = "milkyway_kube_api_request_seconds_sum"
    before = sample(count, cluster="timed", method="GET")
    spent = sample(total, cluster="timed", method="GET")
    try:
        await client.get(ConfigMap, "c", namespace="ns")
        assert sample(count, cluster="timed", method="GET") == before + 1
        assert sample(total, cluster="timed", method="GET") - spent >= 0.05
        requests = sample(
            "milkyway_kube_api_requests_total", cluster="timed", method="GET", code="200"
        )
        await http.get("/api/v1/namespaces/ns/configmaps", params={"watch": "true"})
        assert sample(count, cluster="timed", method="GET") == before + 1
        assert (
            sample("milkyway_kube_api_requests_total", cluster="timed", method="GET", code="200")
            == requests + 1
        )
    finally:
        await client.close()

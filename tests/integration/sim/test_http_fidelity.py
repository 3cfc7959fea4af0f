"""HTTP behaviour of the simulated API server that real clients depend on: metadata-only
representations, content negotiation, ``/metrics`` and ``Status`` bodies."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from milkyway.sim.clusters import SimulatedClusters

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # pragma: no cover - the dev extra installs it
    text_string_to_metric_families = None

CMS = "/api/v1/namespaces/default/configmaps"
PARTIAL_LIST = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
PARTIAL = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"


@pytest.fixture
async def http(sim: SimulatedClusters) -> AsyncIterator[httpx.AsyncClient]:
    assert sim.certificate is not None
    context = ssl.create_default_context(cadata=sim.certificate.ca_pem.decode())
    headers = {"Authorization": f"Bearer {sim.admin_token}"}
    async with httpx.AsyncClient(
        base_url=sim["c1"].url, headers=headers, verify=context, timeout=30
    ) as client:
        yield client


def configmap(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "x"}},
        "data": {"secret-ish": "value"},
    }


async def test_metadata_only_list_get_and_watch(http: httpx.AsyncClient) -> None:
    for name in ("a", "b"):
        assert (await http.post(CMS, json=configmap(name))).status_code == 201
    listed = await http.get(CMS, headers={"Accept": PARTIAL_LIST + ",application/json"})
    assert listed.status_code == 200
    body = listed.json()
    assert body["kind"] == "PartialObjectMetadataList"
    assert body["apiVersion"] == "meta.k8s.io/v1"
    assert body["metadata"]["resourceVersion"]
    assert [i["metadata"]["name"] for i in body["items"]] == ["a", "b"]
    assert all(i["kind"] == "PartialObjectMetadata" and "data" not in i for i in body["items"])
    assert body["items"][0]["metadata"]["labels"] == {"app": "x"}

    one = (await http.get(f"{CMS}/a", headers={"Accept": PARTIAL})).json()
    assert one["kind"] == "PartialObjectMetadata" and "data" not in one
    assert one["metadata"]["uid"]

    events = []
    async with http.stream(
        "GET", CMS, params={"watch": "true", "timeoutSeconds": "2"}, headers={"Accept": PARTIAL}
    ) as stream:
        async for line in stream.aiter_lines():
            if line:
                events.append(json.loads(line))
            if len(events) == 2:
                break
    assert {e["object"]["kind"] for e in events} == {"PartialObjectMetadata"}
    assert all("data" not in e["object"] for e in events)


async def test_unknown_representation_is_406(http: httpx.AsyncClient) -> None:
    refused = await http.get(
        CMS, headers={"Accept": "application/json;as=Bogus;v=v1;g=meta.k8s.io"}
    )
    assert refused.status_code == 406
    assert refused.json()["reason"] == "NotAcceptable"
    fallback = await http.get(
        CMS, headers={"Accept": "application/json;as=Bogus;v=v1;g=meta.k8s.io,application/json"}
    )
    assert fallback.status_code == 200
    assert fallback.json()["kind"] == "ConfigMapList"


async def test_metrics_are_prometheus_text(http: httpx.AsyncClient) -> None:
    if text_string_to_metric_families is None:
        pytest.fail("prometheus-client is needed for this test: pip install -e '.[dev]'")
    await http.post(CMS, json=configmap("m"))
    await http.get(CMS)
    await http.get(f"{CMS}/missing")
    answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    requests = families["apiserver_request"].samples
    by_key = {
        (s.labels["verb"], s.labels["resource"], s.labels["code"]): s.value
        for s in requests
        if s.name == "apiserver_request_total"
    }
    assert by_key[("POST", "configmaps", "201")] == 1
    assert by_key[("LIST", "configmaps", "200")] >= 1
    assert by_key[("GET", "configmaps", "404")] == 1
    durations = families["apiserver_request_duration_seconds"]
    assert durations.type == "histogram"
    buckets = [s for s in durations.samples if s.name.endswith("_bucket")]
    assert any(s.labels["le"] == "+Inf" for s in buckets)
    stored = {s.labels["resource"]: s.value for s in families["apiserver_storage_objects"].samples}
    assert stored["configmaps"] >= 1
    assert stored["namespaces"] >= 4
    assert "apiserver_longrunning_requests" in families


async def test_open_watches_show_in_metrics(http: httpx.AsyncClient) -> None:
    async with http.stream("GET", CMS, params={"watch": "true", "timeoutSeconds": "5"}):
        await asyncio.sleep(0.2)
        text = (await http.get("/metrics")).text
    assert (
        'apiserver_longrunning_requests{component="apiserver",group="",resource="configmaps"'
        in (text)
    )


async def test_error_status_field_order_over_http(http: httpx.AsyncClient) -> None:
    missing = await http.get(f"{CMS}/nothing")
    assert list(missing.json()) == [
        "kind",
        "apiVersion",
        "metadata",
        "status",
        "message",
        "reason",
        "details",
        "code",
    ]


async def test_service_account_tokens_authenticate_under_rbac(tmp_path) -> None:
    from milkyway.sim.controllers.config import ControlPlaneConfig
    from milkyway.sim.controllers.manager import start_control_plane

    async with SimulatedClusters(["c"], kubeconfig_path=tmp_path / "kc", rbac=True) as sim:
        api = sim["c"].api
        plane = start_control_plane(api, 1, ControlPlaneConfig.fast())
        try:
            assert sim.certificate is not None
            ca = sim.certificate.ca_pem.decode()
            context = ssl.create_default_context(cadata=ca)
            admin = {"Authorization": f"Bearer {sim.admin_token}"}
            async with httpx.AsyncClient(base_url=sim["c"].url, verify=context) as client:
                await plane.settle()
                root = api.get("configmaps", "kube-root-ca.crt", namespace="default")
                assert root["data"] == {"ca.crt": ca}
                api.delete("configmaps", "kube-root-ca.crt", namespace="default")
                await plane.settle()
                assert api.get("configmaps", "kube-root-ca.crt", namespace="default")

                requested = await client.post(
                    "/api/v1/namespaces/default/serviceaccounts/default/token",
                    json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"},
                    headers=admin,
                )
                assert requested.status_code == 201
                token = requested.json()["status"]["token"]
                as_sa = {"Authorization": f"Bearer {token}"}
                refused = await client.get("/api/v1/namespaces/default/pods", headers=as_sa)
                assert refused.status_code == 403
                assert 'User "system:serviceaccount:default:default"' in refused.json()["message"]
                api.create(
                    {
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "Role",
                        "metadata": {"name": "pod-reader", "namespace": "default"},
                        "rules": [
                            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
                        ],
                    }
                )
                api.create(
                    {
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "RoleBinding",
                        "metadata": {"name": "pod-reader", "namespace": "default"},
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "Role",
                            "name": "pod-reader",
                        },
                        "subjects": [
                            {"kind": "ServiceAccount", "name": "default", "namespace": "default"}
                        ],
                    }
                )
                allowed = await client.get("/api/v1/namespaces/default/pods", headers=as_sa)
                assert allowed.status_code == 200
                bogus = await client.get(
                    "/api/v1/namespaces/default/pods", headers={"Authorization": "Bearer x.y.z"}
                )
                assert bogus.status_code == 401
        finally:
            await plane.stop()

"""The official ``kubernetes`` Python client against a simulated cluster.

The client is synchronous, so each scenario runs in a worker thread while the simulated
API server keeps serving on the test's event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from milkyway.sim.clusters import SimulatedClusters

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "shards.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "shards", "singular": "shard", "kind": "Shard"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                    },
                },
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "replicas": {"type": "integer", "default": 1},
                                    "zone": {"type": "string"},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {"replicas": {"type": "integer"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def _api_client(kubeconfig: Path, context: str) -> client.ApiClient:
    return config.new_client_from_config(str(kubeconfig), context=context)


def _crud_and_watch(kubeconfig: Path) -> list[tuple[str, str]]:
    api = client.CoreV1Api(_api_client(kubeconfig, "c1"))
    api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="ns1")))
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name="s", labels={"tier": "db"}), string_data={"pw": "x"}
    )
    created = api.create_namespaced_secret("ns1", body)
    assert created.type == "Opaque"
    with pytest.raises(ApiException) as exists:
        api.create_namespaced_secret("ns1", body)
    assert exists.value.status == 409
    listed = api.list_namespaced_secret("ns1", label_selector="tier in (db,cache)")
    assert [s.metadata.name for s in listed.items] == ["s"]
    api.patch_namespaced_secret("s", "ns1", {"metadata": {"labels": {"tier": "cache"}}})
    api.delete_namespaced_secret("s", "ns1")
    seen = []
    stream = watch.Watch().stream(
        api.list_namespaced_secret,
        "ns1",
        resource_version=created.metadata.resource_version,
        timeout_seconds=1,
    )
    for event in stream:
        seen.append((event["type"], event["object"].metadata.labels["tier"]))
    return seen


async def test_crud_and_watch(sim: SimulatedClusters) -> None:
    seen = await asyncio.to_thread(_crud_and_watch, sim.kubeconfig_path)
    assert seen == [("MODIFIED", "cache"), ("DELETED", "cache")]


def _custom_objects(kubeconfig: Path) -> dict:
    api_client = _api_client(kubeconfig, "c2")
    client.ApiextensionsV1Api(api_client).create_custom_resource_definition(CRD)
    custom = client.CustomObjectsApi(api_client)
    custom.create_namespaced_custom_object(
        "example.com",
        "v1",
        "default",
        "shards",
        {"apiVersion": "example.com/v1", "kind": "Shard", "metadata": {"name": "s1"}},
    )
    custom.patch_namespaced_custom_object_scale(
        "example.com", "v1", "default", "shards", "s1", {"spec": {"replicas": 3}}
    )
    custom.patch_namespaced_custom_object_status(
        "example.com", "v1", "default", "shards", "s1", {"status": {"replicas": 2}}
    )
    listed = custom.list_namespaced_custom_object("example.com", "v1", "default", "shards")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["s1"]
    return custom.get_namespaced_custom_object_scale("example.com", "v1", "default", "shards", "s1")


async def test_crd_custom_objects_and_scale(sim: SimulatedClusters) -> None:
    scale = await asyncio.to_thread(_custom_objects, sim.kubeconfig_path)
    assert scale["spec"] == {"replicas": 3}
    assert scale["status"]["replicas"] == 2
    stored = sim["c2"].api.get("shards.example.com", "s1")
    assert stored["metadata"]["generation"] == 2

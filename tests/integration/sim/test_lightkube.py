"""lightkube's async client — the client Milkyway itself uses — against a simulated cluster."""

from __future__ import annotations

import pytest
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.generic_resource import (
    async_load_in_cluster_generic_resources,
    create_namespaced_resource,
)
from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace
from lightkube.types import PatchType

from milkyway.sim.clusters import SimulatedClusters


def _client(sim: SimulatedClusters, context: str = "c1") -> AsyncClient:
    return AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get(context))


async def test_crud_list_and_watch(sim: SimulatedClusters) -> None:
    client = _client(sim)
    try:
        created = await client.create(
            ConfigMap(metadata=ObjectMeta(name="cfg", labels={"app": "a"}), data={"k": "1"}),
            namespace="default",
        )
        start = created.metadata.resourceVersion
        got = await client.get(ConfigMap, "cfg", namespace="default")
        got.data["k"] = "2"
        await client.replace(got)
        stale = got
        stale.metadata.resourceVersion = start
        with pytest.raises(ApiError) as conflict:
            await client.replace(stale)
        assert conflict.value.status.code == 409
        await client.patch(ConfigMap, "cfg", {"data": {"extra": "x"}}, namespace="default")
        names = [cm.metadata.name async for cm in client.list(ConfigMap, labels={"app": "a"})]
        assert names == ["cfg"]

        events = []
        async for kind, obj in client.watch(ConfigMap, namespace="default", resource_version=start):
            events.append((kind, obj.data))
            if len(events) == 2:
                break
        assert events == [
            ("MODIFIED", {"k": "2"}),
            ("MODIFIED", {"k": "2", "extra": "x"}),
        ]
        await client.delete(ConfigMap, "cfg", namespace="default")
        with pytest.raises(ApiError) as missing:
            await client.get(ConfigMap, "cfg", namespace="default")
        assert missing.value.status.code == 404
    finally:
        await client.close()


async def test_deployment_scale_and_namespaces(sim: SimulatedClusters) -> None:
    client = _client(sim, "c2")
    try:
        await client.create(Namespace(metadata=ObjectMeta(name="team")))
        labels = {"app": "web"}
        await client.create(
            Deployment(
                metadata=ObjectMeta(name="web", namespace="team"),
                spec=DeploymentSpec(
                    selector=LabelSelector(matchLabels=labels),
                    template=PodTemplateSpec(
                        metadata=ObjectMeta(labels=labels),
                        spec=PodSpec(containers=[Container(name="web", image="nginx:1")]),
                    ),
                ),
            )
        )
        scale = await client.get(Deployment.Scale, "web", namespace="team")
        assert scale.spec.replicas == 1
        assert scale.status.selector == "app=web"
        scale.spec.replicas = 4
        await client.replace(scale, "web", namespace="team")
        deployment = await client.get(Deployment, "web", namespace="team")
        assert deployment.spec.replicas == 4
        assert deployment.metadata.generation == 2
        await client.delete(Namespace, "team")
        assert sim["c2"].api.list("deployments.apps", namespace="team")["items"] == []
        assert sim["c1"].api.list("namespaces")["items"][0]["metadata"]["name"] == "default"
    finally:
        await client.close()


async def test_crd_registration_then_custom_objects(sim: SimulatedClusters) -> None:
    client = _client(sim)
    try:
        await client.create(
            CustomResourceDefinition.from_dict(
                {
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
                                "subresources": {"status": {}},
                                "schema": {
                                    "openAPIV3Schema": {
                                        "type": "object",
                                        "properties": {
                                            "spec": {
                                                "type": "object",
                                                "properties": {"size": {"type": "integer"}},
                                            },
                                            "status": {
                                                "type": "object",
                                                "properties": {"phase": {"type": "string"}},
                                            },
                                        },
                                    }
                                },
                            }
                        ],
                    },
                }
            )
        )
        await async_load_in_cluster_generic_resources(client)
        widget = create_namespaced_resource("example.com", "v1", "Widget", "widgets")
        made = await client.create(
            widget(metadata=ObjectMeta(name="w1"), spec={"size": 2}), namespace="default"
        )
        assert made.metadata.generation == 1
        with pytest.raises(ApiError) as strategic:
            await client.patch(widget, "w1", {"spec": {"size": 3}}, namespace="default")
        assert strategic.value.status.code == 415
        await client.patch(
            widget.Status,
            "w1",
            {"status": {"phase": "Ready"}, "spec": {"size": 9}},
            namespace="default",
            patch_type=PatchType.MERGE,
        )
        got = await client.get(widget, "w1", namespace="default")
        assert got.status == {"phase": "Ready"}
        assert got.spec == {"size": 2}
        assert got.spec == {"size": 2}
        assert got.metadata.generation == 1
        with pytest.raises(ApiError) as invalid:
            await client.create(
                widget(metadata=ObjectMeta(name="w2"), spec={"size": "big"}), namespace="default"
            )
        assert invalid.value.status.code == 422
    finally:
        await client.close()

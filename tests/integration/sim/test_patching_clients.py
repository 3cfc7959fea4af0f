"""``kubectl patch`` (strategic, merge, JSON) and ``kubectl apply --server-side`` against a
simulated cluster: the real client must see what a real API server answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError as LightkubeApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap
from lightkube.types import PatchType

from milkyway.sim.clusters import SimulatedClusters

from ..conftest import Kubectl

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1
        ports: [{containerPort: 80}]
      - name: side
        image: side:1
"""

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              tags: {type: array, items: {type: string}}
"""

WIDGET = """
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec: {size: 1, tags: [a]}
"""


async def get(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    return json.loads((await kubectl.run("get", *args, "-o", "json")).stdout)


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return deployment["spec"]["template"]["spec"]["containers"]


async def test_kubectl_patch_strategic_merge_and_json(kubectl: Kubectl) -> None:
    await kubectl.run("create", "-f", "-", stdin=DEPLOYMENT)

    await kubectl.run(
        "patch",
        "deployment",
        "web",
        "--type",
        "strategic",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:2"}]}}}}',
    )
    live = await get(kubectl, "deployment", "web")
    assert [(c["name"], c["image"]) for c in containers(live)] == [
        ("nginx", "nginx:2"),
        ("side", "side:1"),
    ]

    await kubectl.run(
        "patch",
        "deployment",
        "web",
        "--type",
        "merge",
        "-p",
        '{"metadata":{"labels":{"tier":"fe"}}}',
    )
    assert (await get(kubectl, "deployment", "web"))["metadata"]["labels"] == {
        "app": "web",
        "tier": "fe",
    }

    await kubectl.run(
        "patch",
        "deployment",
        "web",
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/spec/replicas","value":2},'
        '{"op":"replace","path":"/spec/replicas","value":3}]',
    )
    assert (await get(kubectl, "deployment", "web"))["spec"]["replicas"] == 3

    failed = await kubectl.run(
        "patch",
        "deployment",
        "web",
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/spec/replicas","value":9},'
        '{"op":"test","path":"/spec/replicas","value":2}]',
        check=False,
    )
    assert failed.returncode != 0
    assert "The request is invalid" in failed.stderr
    assert (await get(kubectl, "deployment", "web"))["spec"]["replicas"] == 3


CLIENT_SIDE_V1 = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}, finalizers: [example.com/a, example.com/b]}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
        ports: [{containerPort: 80}, {containerPort: 443}]
      - name: side
        image: side:1
      volumes: [{name: v, emptyDir: {}}]
"""

CLIENT_SIDE_V2 = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}, finalizers: [example.com/b, example.com/c]}
spec:
  replicas: 2
  strategy: {type: Recreate}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: extra
        image: extra:1
      - name: nginx
        image: nginx:2
        env: [{name: B, value: "2"}, {name: C, value: "3"}]
        ports: [{containerPort: 443}]
      volumes: [{name: v, configMap: {name: cm}}]
"""


async def test_kubectl_client_side_apply_three_way_patch_directives(kubectl: Kubectl) -> None:
    # A second client-side apply sends a strategic merge patch with $setElementOrder,
    # $deleteFromPrimitiveList, $retainKeys and $patch: delete for the removed container.
    await kubectl.run("apply", "-f", "-", stdin=CLIENT_SIDE_V1)
    await kubectl.run("apply", "-f", "-", stdin=CLIENT_SIDE_V2)
    live = await get(kubectl, "deployment", "web")
    assert live["metadata"]["finalizers"] == ["example.com/b", "example.com/c"]
    assert live["spec"]["strategy"] == {"type": "Recreate"}
    pod_spec = live["spec"]["template"]["spec"]
    assert [c["name"] for c in pod_spec["containers"]] == ["extra", "nginx"]
    nginx = pod_spec["containers"][1]
    assert nginx["image"] == "nginx:2"
    assert nginx["env"] == [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    assert [p["containerPort"] for p in nginx["ports"]] == [443]
    assert [(v["name"], "configMap" in v, "emptyDir" in v) for v in pod_spec["volumes"]] == [
        ("v", True, False)
    ]


async def test_kubectl_server_side_apply_conflicts_force_and_removal(kubectl: Kubectl) -> None:
    out = await kubectl.run("apply", "--server-side", "-f", "-", stdin=DEPLOYMENT)
    assert "serverside-applied" in out.stdout
    await kubectl.run(
        "patch", "deployment", "web", "--type", "merge", "-p", '{"spec":{"replicas":5}}'
    )

    conflict = await kubectl.run("apply", "--server-side", "-f", "-", stdin=DEPLOYMENT, check=False)
    assert conflict.returncode != 0
    assert 'conflict with "kubectl-patch"' in conflict.stderr
    assert ".spec.replicas" in conflict.stderr
    assert (await get(kubectl, "deployment", "web"))["spec"]["replicas"] == 5

    await kubectl.run("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=DEPLOYMENT)
    live = await get(kubectl, "deployment", "web", "--show-managed-fields")
    assert live["spec"]["replicas"] == 2
    appliers = [e for e in live["metadata"]["managedFields"] if e["operation"] == "Apply"]
    assert [(e["manager"], e["fieldsType"]) for e in appliers] == [("kubectl", "FieldsV1")]
    assert "f:replicas" in appliers[0]["fieldsV1"]["f:spec"]

    without_side = DEPLOYMENT.split("      - name: side")[0]
    await kubectl.run("apply", "--server-side", "-f", "-", stdin=without_side)
    assert [c["name"] for c in containers(await get(kubectl, "deployment", "web"))] == ["nginx"]


async def test_kubectl_moves_from_client_side_to_server_side_apply(kubectl: Kubectl) -> None:
    await kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT)
    changed = DEPLOYMENT.replace("replicas: 2", "replicas: 4")
    out = await kubectl.run("apply", "--server-side", "-f", "-", stdin=changed)
    assert "serverside-applied" in out.stdout
    assert (await get(kubectl, "deployment", "web"))["spec"]["replicas"] == 4


async def test_server_side_apply_after_client_side_apply_removes_what_it_drops(
    kubectl: Kubectl,
) -> None:
    both = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '1', b: '2'}\n"
    await kubectl.run("apply", "-f", "-", stdin=both)
    await kubectl.run("apply", "--server-side", "-f", "-", stdin=both.replace(", b: '2'", ""))
    live = await get(kubectl, "configmap", "c", "--show-managed-fields")
    assert live["data"] == {"a": "1"}
    managers = {e["manager"] for e in live["metadata"]["managedFields"]}
    assert "kubectl-client-side-apply" not in managers


async def test_custom_resources_take_merge_and_json_patches_but_not_strategic(
    kubectl: Kubectl,
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=WIDGET_CRD)
    for _ in range(50):
        if (await kubectl.run("apply", "-f", "-", stdin=WIDGET, check=False)).returncode == 0:
            break
        await asyncio.sleep(0.2)
    else:
        pytest.fail("the Widget resource was not served within 10 seconds of creating its CRD")

    refused = await kubectl.run(
        "patch", "widget", "w", "--type", "strategic", "-p", '{"spec":{"size":2}}', check=False
    )
    assert refused.returncode != 0
    assert "application/merge-patch+json" in refused.stderr

    await kubectl.run("patch", "widget", "w", "--type", "merge", "-p", '{"spec":{"tags":["b"]}}')
    await kubectl.run(
        "patch",
        "widget",
        "w",
        "--type",
        "json",
        "-p",
        '[{"op":"add","path":"/spec/tags/-","value":"c"}]',
    )
    assert (await get(kubectl, "widget", "w"))["spec"] == {"size": 1, "tags": ["b", "c"]}


def configmap(**data: str) -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name="c", namespace="default"), data=data)


async def test_lightkube_apply_conflict_force_and_patch_types(sim: SimulatedClusters) -> None:
    client = AsyncClient(config=KubeConfig.from_file(sim.kubeconfig_path), field_manager="lk")
    try:
        created = await client.apply(configmap(a="1", b="2"))
        [entry] = created.metadata.managedFields
        assert (entry.manager, entry.operation, entry.fieldsType) == ("lk", "Apply", "FieldsV1")
        assert entry.fieldsV1 == {"f:data": {"f:a": {}, "f:b": {}}}

        await client.patch(
            ConfigMap,
            "c",
            {"data": {"a": "9"}},
            namespace="default",
            patch_type=PatchType.MERGE,
            field_manager="other",
        )
        with pytest.raises(LightkubeApiError) as err:
            await client.apply(configmap(a="1"))
        assert err.value.status.code == 409
        assert [(c.reason, c.field) for c in err.value.status.details.causes] == [
            ("FieldManagerConflict", ".data.a")
        ]

        forced = await client.apply(configmap(a="1"), force=True)
        assert forced.data == {"a": "1"}

        with pytest.raises(LightkubeApiError) as err:
            await client.patch(
                ConfigMap,
                "c",
                [{"op": "test", "path": "/data/a", "value": "2"}],
                namespace="default",
                patch_type=PatchType.JSON,
            )
        assert (err.value.status.code, err.value.status.reason) == (422, "Invalid")
    finally:
        await client.close()


async def test_official_client_patches_with_its_default_content_types(
    sim: SimulatedClusters,
) -> None:
    api = k8s_client.CoreV1Api(k8s_config.new_client_from_config(str(sim.kubeconfig_path)))
    body = {"metadata": {"name": "c"}, "data": {"a": "1"}}
    # The official client is synchronous: run it off the loop that serves the simulator.
    await asyncio.to_thread(api.create_namespaced_config_map, "default", body)
    merged = await asyncio.to_thread(
        api.patch_namespaced_config_map, "c", "default", {"data": {"z": "1"}}
    )
    assert merged.data == {"a": "1", "z": "1"}
    removed = await asyncio.to_thread(
        api.patch_namespaced_config_map, "c", "default", [{"op": "remove", "path": "/data/z"}]
    )
    assert removed.data == {"a": "1"}

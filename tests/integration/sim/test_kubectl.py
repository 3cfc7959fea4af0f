"""The real ``kubectl`` against a simulated cluster: what users type must just work."""

from __future__ import annotations

import asyncio
import json

import yaml

from milkyway.sim.clusters import SimulatedClusters

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
        image: nginx:1.27
        ports: [{containerPort: 80}]
"""

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, default: 3}
              color: {type: string}
          status:
            type: object
            properties:
              ready: {type: boolean}
"""


async def test_apply_get_describe_patch_scale_delete(kubectl, sim: SimulatedClusters) -> None:
    out = await kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT)
    assert "deployment.apps/web created" in out.stdout
    again = await kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT)
    assert "deployment.apps/web unchanged" in again.stdout

    table = await kubectl.run("get", "deployments")
    header = table.stdout.splitlines()[0].split()
    assert header[:2] == ["NAME", "READY"]
    assert "web" in table.stdout

    as_yaml = yaml.safe_load((await kubectl.run("get", "deployment", "web", "-o", "yaml")).stdout)
    assert as_yaml["spec"]["replicas"] == 2
    assert as_yaml["metadata"]["generation"] == 1
    assert as_yaml["spec"]["strategy"]["type"] == "RollingUpdate"

    described = await kubectl.run("describe", "deployment", "web")
    assert "Replicas:" in described.stdout and "app=web" in described.stdout

    await kubectl.run(
        "patch",
        "deployment",
        "web",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}',
    )
    await kubectl.run("scale", "deployment", "web", "--replicas=5")
    stored = sim["c1"].api.get("deployments.apps", "web")
    assert stored["spec"]["replicas"] == 5
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert stored["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}
    ]
    assert stored["metadata"]["generation"] == 3

    await kubectl.run("delete", "deployment", "web")
    assert sim["c1"].api.list("deployments.apps")["items"] == []


async def test_wait_for_condition_and_explain(kubectl, sim: SimulatedClusters) -> None:
    api = sim["c1"].api
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]},
        }
    )
    waiting = asyncio.create_task(
        kubectl.run("wait", "--for=condition=Ready", "pod/p", "--timeout=20s")
    )
    await asyncio.sleep(0.5)
    pod = api.get("pods", "p")
    pod["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    api.update(pod, subresource="status")
    result = await waiting
    assert "pod/p condition met" in result.stdout

    explained = await kubectl.run("explain", "statefulset.spec.serviceName")
    assert "serviceName" in explained.stdout and "<string>" in explained.stdout


async def test_get_watch_streams_changes(kubectl, sim: SimulatedClusters) -> None:
    api = sim["c1"].api
    api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "first"}})
    proc = await kubectl.start("get", "configmaps", "-w", "--output-watch-events")
    try:
        assert proc.stdout is not None
        seen: list[str] = []

        async def read_until(name: str) -> None:
            while not any(name in line for line in seen):
                line = await proc.stdout.readline()  # type: ignore[union-attr]
                assert line, "kubectl get -w ended early"
                seen.append(line.decode())

        await asyncio.wait_for(read_until("first"), 20)
        api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "second"}})
        await asyncio.wait_for(read_until("second"), 20)
        api.delete("configmaps", "second")
        await asyncio.wait_for(read_until("DELETED"), 20)
        assert any(line.startswith("ADDED") and "second" in line for line in seen)
    finally:
        proc.kill()
        await proc.wait()


async def test_crd_then_custom_objects_with_printer_columns(
    kubectl, sim: SimulatedClusters
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=CRD)
    await kubectl.run(
        "wait", "--for=condition=Established", "crd/gadgets.example.com", "--timeout=10s"
    )
    await kubectl.run(
        "apply",
        "-f",
        "-",
        stdin="apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g1}\n"
        "spec: {color: blue}\n",
    )
    table = await kubectl.run("get", "gadgets")
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "SIZE", "COLOR"]
    assert lines[1].split()[:3] == ["g1", "3", "blue"]
    short = await kubectl.run("get", "gd", "g1", "-o", "json")
    assert json.loads(short.stdout)["spec"] == {"color": "blue", "size": 3}
    resources = await kubectl.run("api-resources", "--api-group=example.com")
    assert "gadgets" in resources.stdout and "gd" in resources.stdout


async def test_logs_and_delete_namespace(kubectl, sim: SimulatedClusters) -> None:
    api = sim["c1"].api
    await kubectl.run(
        "apply", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n"
    )
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "team"},
            "spec": {"containers": [{"name": "main", "image": "busybox:1"}]},
        }
    )
    api.write_log("p", "main", "ready to serve", namespace="team")
    logs = await kubectl.run("logs", "-n", "team", "p")
    assert logs.stdout == "ready to serve\n"
    await kubectl.run("delete", "namespace", "team", "--timeout=20s")
    assert "team" not in [n["metadata"]["name"] for n in api.list("namespaces")["items"]]
    assert api.list("pods", namespace="team")["items"] == []

"""kubectl's strict validation and ``explain`` read the simulator's OpenAPI documents.

``kubectl apply`` (``--validate=strict`` by default) finds the ``fieldValidation``
parameter on the kind's PATCH operation and lets the server reject unknown fields;
client-side ``apply`` builds its strategic merge patch from the published schemas;
``kubectl explain`` renders them. All against built-ins and a CRD registered at run time.
"""

from __future__ import annotations

import yaml

from milkyway.sim.clusters import SimulatedClusters

STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: zk}
spec:
  serviceName: zk
  replicas: 3
  selector: {matchLabels: {app: zk}}
  template:
    metadata: {labels: {app: zk}}
    spec:
      containers:
      - name: zk
        image: zookeeper:3.9
        ports: [{containerPort: 2181, name: client}]
      - name: exporter
        image: exporter:1
"""

CRD = """
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
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Zones, type: string, jsonPath: '.spec.members[*].zone', priority: 1}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What the widget should be.
            required: [size]
            x-kubernetes-validations:
            - {rule: self.size <= 9, message: at most nine}
            properties:
              size: {type: integer, minimum: 1, description: How many parts.}
              members:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [zone]
                items:
                  type: object
                  required: [zone]
                  properties:
                    zone: {type: string}
                    weight: {type: integer, default: 1}
"""


def widget(spec: str) -> str:
    return f"apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w1}}\nspec: {spec}\n"


async def test_strict_apply_is_rejected_by_the_server_and_stores_nothing(
    kubectl, sim: SimulatedClusters
) -> None:
    typo = STATEFULSET.replace("  replicas: 3", "  replica: 3")
    result = await kubectl.run("apply", "-f", "-", stdin=typo, check=False)
    assert result.returncode != 0
    assert 'strict decoding error: unknown field "spec.replica"' in result.stderr
    assert sim["c1"].api.list("statefulsets.apps")["items"] == []

    bad_name = STATEFULSET.replace("- name: exporter", "- name: Exporter")
    result = await kubectl.run("apply", "-f", "-", stdin=bad_name, check=False)
    assert result.returncode != 0
    assert 'spec.template.spec.containers[1].name: Invalid value: "Exporter"' in result.stderr
    assert sim["c1"].api.list("statefulsets.apps")["items"] == []


async def test_client_side_apply_merges_containers_by_name(kubectl, sim: SimulatedClusters) -> None:
    created = await kubectl.run("apply", "-f", "-", stdin=STATEFULSET)
    assert "statefulset.apps/zk created" in created.stdout
    api = sim["c1"].api
    live = api.get("statefulsets.apps", "zk")
    live["spec"]["template"]["spec"]["containers"][1]["env"] = [{"name": "LIVE", "value": "1"}]
    api.update(live)
    changed = STATEFULSET.replace("image: exporter:1", "image: exporter:2")
    configured = await kubectl.run("apply", "-f", "-", stdin=changed)
    assert "statefulset.apps/zk configured" in configured.stdout
    stored = api.get("statefulsets.apps", "zk")
    containers = stored["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("zk", "zookeeper:3.9"),
        ("exporter", "exporter:2"),
    ]
    assert containers[0]["ports"][0]["containerPort"] == 2181
    # A strategic merge patch keeps what others set on a container; a merge patch would not.
    assert containers[1]["env"] == [{"name": "LIVE", "value": "1"}]


async def test_explain_renders_builtin_schemas(kubectl) -> None:
    explained = await kubectl.run("explain", "pods.spec.containers")
    text = explained.stdout
    assert "FIELD: containers <[]Container>" in text
    assert "  image\t<string>" in text
    assert "  name\t<string> -required-" in text
    target_port = await kubectl.run("explain", "services.spec.ports.targetPort")
    assert "FIELD: targetPort <IntOrString>" in target_port.stdout
    limits = await kubectl.run(
        "explain", "deployment.spec.template.spec.containers.resources.limits"
    )
    assert "FIELD: limits <map[string]Quantity>" in limits.stdout


async def test_custom_resources_are_validated_and_explained(
    kubectl, sim: SimulatedClusters
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=CRD)
    await kubectl.run(
        "wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s"
    )
    explained = await kubectl.run("explain", "widgets.spec")
    assert "What the widget should be." in explained.stdout
    assert "size\t<integer> -required-" in explained.stdout
    assert "How many parts." in (await kubectl.run("explain", "widgets.spec.size")).stdout

    unknown = await kubectl.run(
        "apply", "-f", "-", stdin=widget("{size: 2, bogus: true}"), check=False
    )
    assert 'unknown field "spec.bogus"' in unknown.stderr
    too_big = await kubectl.run("apply", "-f", "-", stdin=widget("{size: 12}"), check=False)
    assert 'spec: Invalid value: "object": at most nine' in too_big.stderr
    assert sim["c1"].api.list("widgets.example.com", namespace="default")["items"] == []

    await kubectl.run(
        "apply", "-f", "-", stdin=widget("{size: 2, members: [{zone: a}, {zone: b, weight: 5}]}")
    )
    stored = yaml.safe_load((await kubectl.run("get", "widget", "w1", "-o", "yaml")).stdout)
    assert stored["spec"]["members"] == [{"zone": "a", "weight": 1}, {"zone": "b", "weight": 5}]
    reapplied = await kubectl.run(
        "apply", "-f", "-", stdin=widget("{size: 2, members: [{zone: a}, {zone: b}]}")
    )
    assert "widget.example.com/w1 configured" in reapplied.stdout
    stored = yaml.safe_load((await kubectl.run("get", "widget", "w1", "-o", "yaml")).stdout)
    assert stored["spec"]["members"] == [{"zone": "a", "weight": 1}, {"zone": "b", "weight": 1}]
    wide = (await kubectl.run("get", "widgets", "-o", "wide")).stdout.splitlines()
    assert wide[0].split() == ["NAME", "SIZE", "ZONES"]
    assert wide[1].split() == ["w1", "2", "a,b"]
    narrow = (await kubectl.run("get", "widgets")).stdout.splitlines()
    assert narrow[0].split() == ["NAME", "SIZE"]

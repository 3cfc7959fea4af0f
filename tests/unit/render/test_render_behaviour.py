"""What rendering promises beyond validity: identities, DNS, budgets, hashes, determinism."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from milkyway.components import registry_from_resources
from milkyway.kube.labels import CONFIG_HASH, MEMBER
from milkyway.model import load_resolved
from milkyway.model.cluster import Cluster
from milkyway.render import render_application, render_zone

from .conftest import application, policy_violations, resolved, strict_errors


def _kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def _pod_hash(manifests: list[dict[str, Any]]) -> str:
    workload = next(m for m in manifests if m["kind"] in ("StatefulSet", "Deployment"))
    return workload["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH]


def _with_status(data: dict[str, Any], members: dict[str, Any]) -> dict[str, Any]:
    return {**data, "status": {"members": members}}


def test_statefulset_members_file_maps_ordinals_to_identities_from_status() -> None:
    data = _with_status(
        application("zookeeper", "statefulset", [("phx", 3)]),
        {"zookeeper1": {"nextId": 8, "zones": {"phx": {"ids": [5, 6, 7]}}}},
    )
    manifests = render_zone(resolved(data), "zookeeper1", "phx")
    config = _kind(manifests, "ConfigMap")[0]["data"]
    lines = config["members"].splitlines()
    assert [line.split()[:2] for line in lines] == [["0", "5"], ["1", "6"], ["2", "7"]]
    assert (
        "server.5=app-zookeeper1-phx-0.app-zookeeper1-phx.data.svc.cluster.local"
        in config["zoo.cfg"]
    )


def test_deploymentset_gives_each_member_its_own_deployment_and_claim() -> None:
    app = resolved(application("kafka", "deploymentset", [("phx", 2)]))
    manifests = render_zone(app, "kafka1", "phx")
    deployments = _kind(manifests, "Deployment")
    claims = _kind(manifests, "PersistentVolumeClaim")
    assert [d["metadata"]["name"] for d in deployments] == [
        "app-kafka1-phx-m1",
        "app-kafka1-phx-m2",
    ]
    assert [c["metadata"]["name"] for c in claims] == [
        "app-kafka1-phx-m1-data",
        "app-kafka1-phx-m2-data",
    ]
    for index, deployment in enumerate(deployments, start=1):
        spec = deployment["spec"]
        assert spec["replicas"] == 1
        assert spec["strategy"] == {"type": "Recreate"}
        assert spec["selector"]["matchLabels"][MEMBER] == str(index)
        pod = spec["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["MILKYWAY_MEMBER_ID"] == str(index)
        assert env["MILKYWAY_MEMBER_HOST"].startswith(f"app-kafka1-phx-m{index}.app-kafka1-phx.")
        assert pod["hostname"] == f"app-kafka1-phx-m{index}"
        assert pod["subdomain"] == "app-kafka1-phx"
        volume = next(v for v in pod["volumes"] if v["name"] == "data")
        assert volume["persistentVolumeClaim"]["claimName"] == f"app-kafka1-phx-m{index}-data"


def test_pods_pattern_pins_each_member_to_its_node_and_local_volume() -> None:
    app = resolved(application("etcd", "pods", [("phx", 3)]))
    manifests = render_zone(app, "etcd1", "phx")
    volumes = _kind(manifests, "PersistentVolume")
    pods = _kind(manifests, "Pod")
    assert len(volumes) == len(pods) == 3
    for ordinal, (volume, pod) in enumerate(zip(volumes, pods, strict=True)):
        node = f"phx-n{ordinal}"
        assert "namespace" not in volume["metadata"]
        terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
        assert terms[0]["matchExpressions"][0]["values"] == [node]
        assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": node}
        assert pod["spec"]["restartPolicy"] == "Always"
    claims = _kind(manifests, "PersistentVolumeClaim")
    assert [c["spec"]["volumeName"] for c in claims] == [v["metadata"]["name"] for v in volumes]


def test_cross_zone_members_use_the_cluster_set_dns_names() -> None:
    data = application("zookeeper", "statefulset", [("phx", 2), ("slc", 1)])
    clusters = {
        "slc": Cluster.model_validate(
            {
                "apiVersion": "milkyway.ebay.com/v1",
                "kind": "Cluster",
                "metadata": {"name": "na-slc-7"},
                "spec": {
                    "region": "NA",
                    "zone": "slc",
                    "kubeconfigSecretRef": {"name": "k", "namespace": "milkyway"},
                    "clusterSetDomain": "mesh.example",
                },
            }
        )
    }
    app = resolved(data)
    phx = _kind(render_zone(app, "zookeeper1", "phx", clusters=clusters), "ConfigMap")[0]
    slc = _kind(render_zone(app, "zookeeper1", "slc", clusters=clusters), "ConfigMap")[0]
    assert (
        "server.3=app-zookeeper1-slc-0.na-slc-7.app-zookeeper1-slc.data.svc.mesh.example:2888:3888"
        in phx["data"]["zoo.cfg"]
    )
    assert (
        "server.1=app-zookeeper1-phx-0.phx.app-zookeeper1-phx.data.svc.clusterset.local:2888:3888"
        in slc["data"]["zoo.cfg"]
    )
    servers = {
        name: [
            line for line in config["data"]["zoo.cfg"].splitlines() if line.startswith("server.")
        ]
        for name, config in (("phx", phx), ("slc", slc))
    }
    assert servers["phx"] == servers["slc"], "every member must see the same ensemble"
    assert slc["data"]["members"].split()[2] == (
        "app-zookeeper1-slc-0.na-slc-7.app-zookeeper1-slc.data.svc.mesh.example"
    )


def test_single_zone_components_use_local_names_inside_and_cluster_set_names_outside() -> None:
    data = application("kafka", "statefulset", [("phx", 1), ("slc", 2)])
    app = resolved(data)
    zookeeper = _kind(render_zone(app, "zookeeper1", "phx"), "ConfigMap")[0]["data"]["zoo.cfg"]
    assert "server.1=app-zookeeper1-phx-0.app-zookeeper1-phx.data.svc.cluster.local" in zookeeper
    kafka = _kind(render_zone(app, "kafka1", "slc"), "ConfigMap")[0]["data"]["server.properties"]
    assert (
        "zookeeper.connect=app-zookeeper1-phx-0.phx.app-zookeeper1-phx.data.svc.clusterset.local"
        in kafka
    )


def test_quorum_budget_is_the_zones_share_of_n_minus_1_over_2() -> None:
    app = resolved(application("zookeeper", "statefulset", [("phx", 3), ("slc", 2)]))
    budgets = {
        zone: _kind(render_zone(app, "zookeeper1", zone), "PodDisruptionBudget")
        for zone in ("phx", "slc")
    }
    assert budgets["phx"][0]["spec"]["maxUnavailable"] == 2
    assert budgets["slc"][0]["spec"]["maxUnavailable"] == 2
    single = resolved(application("zookeeper", "statefulset", [("phx", 1)]))
    assert _kind(render_zone(single, "zookeeper1", "phx"), "PodDisruptionBudget") == []


def test_hot_reloadable_params_keep_the_pod_template_hash() -> None:
    base = application("kafka")
    hot = application("kafka")
    hot["spec"]["components"][1]["params"] = {"logRetentionHours": 1}
    cold = application("kafka")
    cold["spec"]["components"][1]["params"] = {"numPartitions": 12}
    rendered = {
        name: render_zone(resolved(data), "kafka1", "phx")
        for name, data in (("base", base), ("hot", hot), ("cold", cold))
    }
    assert _pod_hash(rendered["hot"]) == _pod_hash(rendered["base"])
    assert _pod_hash(rendered["cold"]) != _pod_hash(rendered["base"])
    config_hash = {
        k: _kind(v, "ConfigMap")[0]["metadata"]["annotations"][CONFIG_HASH]
        for k, v in rendered.items()
    }
    assert config_hash["hot"] != config_hash["base"], "the ConfigMap still changes"
    assert (
        "log.retention.hours=1"
        in _kind(rendered["hot"], "ConfigMap")[0]["data"]["server.properties"]
    )


def test_rendering_is_deterministic_and_does_not_share_objects() -> None:
    data = application("kafka", "statefulset", [("phx", 3), ("slc", 2)])
    first = render_application(resolved(data))
    second = render_application(resolved(data))
    assert yaml.safe_dump(list(first.items())) == yaml.safe_dump(list(second.items()))
    manifests = first[("kafka1", "phx")]
    labels = manifests[0]["metadata"]["labels"]
    labels["mutated"] = "yes"
    assert all("mutated" not in m["metadata"]["labels"] for m in manifests[1:])


def test_no_server_filled_fields() -> None:
    for manifests in render_application(resolved(application("kafka"))).values():
        for manifest in manifests:
            assert "status" not in manifest
            assert not {"uid", "resourceVersion", "creationTimestamp", "generation"} & set(
                manifest["metadata"]
            )


def test_empty_zone_renders_no_members() -> None:
    app = resolved(application("kafka", "deploymentset", [("phx", 2), ("slc", 0)]))
    manifests = render_zone(app, "kafka1", "slc")
    assert {m["kind"] for m in manifests} == {"ConfigMap", "Service"}
    sts = resolved(application("kafka", "statefulset", [("phx", 2), ("slc", 0)]))
    statefulset = _kind(render_zone(sts, "kafka1", "slc"), "StatefulSet")[0]
    assert statefulset["spec"]["replicas"] == 0


def test_custom_image_and_version_labels() -> None:
    data = application("kafka")
    data["spec"]["components"][1]["image"] = "registry.example.com/kafka:3.9.1-fix"
    data["spec"]["components"][1]["version"] = "3.9.1+fix"
    manifests = render_zone(resolved(data), "kafka1", "phx")
    statefulset = _kind(manifests, "StatefulSet")[0]
    assert statefulset["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example.com/kafka:3.9.1-fix"
    )
    assert statefulset["metadata"]["labels"]["app.kubernetes.io/version"] == "3.9.1_fix"


def test_dependency_exports_reach_dependants() -> None:
    app = resolved(application("flink-taskmanager", "deployment", [("phx", 2)]))
    config = _kind(render_zone(app, "flink-taskmanager1", "phx"), "ConfigMap")[0]
    text = config["data"]["flink-conf.yaml"]
    assert "jobmanager.rpc.address: app-flink-jobmanager1-phx.data.svc.cluster.local" in text
    assert "high-availability" not in text


def test_the_documented_custom_type_loads_and_renders() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "component-types.md").read_text()
    block = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    registry = registry_from_resources([yaml.safe_load(block)])
    data = application("zookeeper")
    data["spec"]["components"] = [
        {
            "name": "cache",
            "type": "redis",
            "version": "7.2.5",
            "config": "large",
            "regions": [{"name": "NA", "zones": [{"name": "phx", "size": 2}]}],
        }
    ]
    app = load_resolved(yaml.safe_dump(data), registry)
    manifests = render_zone(app, "cache", "phx")
    config = _kind(manifests, "ConfigMap")[0]["data"]["redis.conf"]
    assert "maxmemory 4096mb" in config
    for manifest in manifests:
        assert strict_errors(manifest) is None
        assert policy_violations(manifest, app.components["cache"].type) == []


def test_claim_templates_do_not_change_with_the_version() -> None:
    """Kubernetes refuses any change to a StatefulSet's claim templates, so an upgrade
    must render them exactly as before."""
    old = application("zookeeper")
    new = application("zookeeper")
    old["spec"]["components"][0]["version"] = "3.8.4"
    new["spec"]["components"][0]["version"] = "3.9.3"
    before = _kind(render_zone(resolved(old), "zookeeper1", "phx"), "StatefulSet")[0]
    after = _kind(render_zone(resolved(new), "zookeeper1", "phx"), "StatefulSet")[0]
    assert before["metadata"]["labels"] != after["metadata"]["labels"]
    assert before["spec"]["volumeClaimTemplates"] == after["spec"]["volumeClaimTemplates"]

"""kubectl commands that need the kinds and behaviours every real cluster has."""

from __future__ import annotations

import json

from milkyway.sim.clusters import SimulatedClusters

CONFIGMAPS = """
apiVersion: v1
kind: ConfigMap
metadata: {name: keep, labels: {app: demo}}
data: {a: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: drop, labels: {app: demo}}
data: {b: "2"}
"""

KEEP_ONLY = """
apiVersion: v1
kind: ConfigMap
metadata: {name: keep, labels: {app: demo}}
data: {a: "1"}
"""


async def test_apply_prune_without_an_allowlist(kubectl, sim: SimulatedClusters) -> None:
    await kubectl.run("apply", "-f", "-", stdin=CONFIGMAPS)
    pruned = await kubectl.run("apply", "--prune", "-l", "app=demo", "-f", "-", stdin=KEEP_ONLY)
    assert "configmap/drop pruned" in pruned.stdout
    names = [o["metadata"]["name"] for o in sim["c1"].api.list("configmaps")["items"]]
    assert "keep" in names and "drop" not in names


async def test_cluster_info_dump(kubectl, sim: SimulatedClusters) -> None:
    await kubectl.run("apply", "-f", "-", stdin=KEEP_ONLY)
    dump = await kubectl.run("cluster-info", "dump", "--namespaces", "default")
    assert '"kind": "NodeList"' in dump.stdout
    assert '"kind": "ReplicationControllerList"' in dump.stdout
    assert '"kind": "DaemonSetList"' in dump.stdout


async def test_drain_evicts_pods_as_json(kubectl, sim: SimulatedClusters) -> None:
    api = sim["c1"].api
    api.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx:1.27"}]},
        }
    )
    drained = await kubectl.run("drain", "n1", "--force", "--timeout=30s")
    assert "evicting pod default/p" in drained.stdout + drained.stderr
    assert api.get("nodes", "n1")["spec"]["unschedulable"] is True
    assert api.list("pods", namespace="default")["items"] == []


async def test_jobs_and_cronjobs_through_kubectl(kubectl, sim: SimulatedClusters) -> None:
    for kind, extra in (("cronjob", ["--schedule=*/5 * * * *"]), ("job", [])):
        manifest = await kubectl.run(
            "create", kind, "once", "--image=busybox:1.36", *extra, "--dry-run=client", "-o", "json"
        )
        await kubectl.run("apply", "-f", "-", stdin=manifest.stdout)
    job = json.loads((await kubectl.run("get", "job", "once", "-o", "json")).stdout)
    assert job["spec"]["completions"] == 1
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "once"
    jobs = await kubectl.run("get", "jobs")
    assert jobs.stdout.split()[:5] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    cronjobs = await kubectl.run("get", "cronjobs")
    assert cronjobs.stdout.split()[:3] == ["NAME", "SCHEDULE", "TIMEZONE"]
    assert "*/5 * * * *" in cronjobs.stdout

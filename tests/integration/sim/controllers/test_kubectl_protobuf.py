"""kubectl's typed commands send protobuf bodies and ask for OpenAPI v2 as protobuf: they
must behave as against a real API server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.polling import eventually

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig

from .conftest import ClusterCli


@dataclass
class Running(ClusterCli):
    sim: SimulatedClusters | None = None

    @property
    def api(self) -> ClusterAPI:
        assert self.sim is not None
        return self.sim["east"].api


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with (
        SimulatedClusters(["east"], kubeconfig_path=tmp_path / "kubeconfig") as sim,
        ControlledClusters(sim, nodes=1, config=ControlPlaneConfig.fast()),
    ):
        yield Running(tmp_path / "kubeconfig", tmp_path / "cache", sim=sim)


async def test_typed_create_commands_and_auth_can_i(running: Running) -> None:
    api = running.api
    assert "namespace/team created" in await running.output("create", "namespace", "team")
    assert api.get("namespaces", "team")["metadata"]["labels"] == {
        "kubernetes.io/metadata.name": "team"
    }
    await running.output("create", "configmap", "cm", "-n", "team", "--from-literal=a=b")
    assert api.get("configmaps", "cm", namespace="team")["data"] == {"a": "b"}
    await running.output("create", "secret", "generic", "s", "-n", "team", "--from-literal=x=y")
    secret = api.get("secrets", "s", namespace="team")
    assert secret["data"] == {"x": "eQ=="} and secret["type"] == "Opaque"
    await running.output("create", "deployment", "web", "-n", "team", "--image=nginx:1.27")
    deployment = api.get("apps/v1/deployments", "web", namespace="team")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.27" and container["name"] == "nginx"
    # Go writes zero-valued non-pointer fields; they must not show up as set.
    assert "generateName" not in deployment["metadata"]
    assert "stdin" not in container and "tty" not in container
    await running.output("create", "deployment", "none", "-n", "team", "--image=x", "--replicas=0")
    assert api.get("apps/v1/deployments", "none", namespace="team")["spec"]["replicas"] == 0

    assert (await running.output("auth", "can-i", "get", "pods")).strip() == "yes"
    assert (await running.output("auth", "can-i", "create", "pods/exec")).strip() == "yes"


async def test_drain_is_blocked_by_a_disruption_budget_then_allowed(running: Running) -> None:
    api = running.api
    node = api.list("nodes")["items"][0]["metadata"]["name"]
    await running.output("create", "deployment", "web", "--image=nginx:1.27")
    await running.output(
        "create", "poddisruptionbudget", "web", "--selector=app=web", "--min-available=1"
    )
    await running.output("rollout", "status", "deployment/web", "--timeout=60s")
    await eventually(
        lambda: (
            api.get("policy/v1/poddisruptionbudgets", "web", namespace="default")
            .get("status", {})
            .get("currentHealthy")
        ),
        what="the budget to count the healthy pod",
    )

    rc, _, err = await running.kubectl(
        "drain", node, "--ignore-daemonsets", "--timeout=3s", check=False
    )
    assert rc != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget" in err
    assert api.get("nodes", node)["spec"].get("unschedulable") is True

    await running.output("delete", "poddisruptionbudget", "web")
    out = await running.output("drain", node, "--ignore-daemonsets", "--timeout=30s")
    assert f"node/{node} drained" in out


CRD_AND_OBJECT = b"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: example.com/v1
kind: Gadget
metadata: {name: g1, namespace: default}
spec: {size: 1}
"""


async def test_unknown_kinds_get_kubectls_own_message(running: Running) -> None:
    unknown = b"apiVersion: nothing.example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
    rc, _, err = await running.kubectl("apply", "-f", "-", stdin=unknown, check=False)
    assert rc != 0
    assert 'no matches for kind "Widget" in version "nothing.example.com/v1"' in err
    assert "ensure CRDs are installed first" in err
    assert "proto" not in err

    rc, out, err = await running.kubectl("apply", "-f", "-", stdin=CRD_AND_OBJECT, check=False)
    assert "customresourcedefinition.apiextensions.k8s.io/gadgets.example.com created" in out
    assert 'no matches for kind "Gadget"' in err and "ensure CRDs are installed first" in err
    out = await running.output("apply", "-f", "-", stdin=CRD_AND_OBJECT)
    assert "gadget.example.com/g1 created" in out


async def test_without_kubectl_on_path_protobuf_is_415_naming_what_to_install(
    running: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server looks kubectl up on its own PATH; the client is started by full path."""
    import shutil

    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail("kubectl v1.32 is needed on PATH for this test (install kubectl)")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    from .conftest import run

    rc, _, err = await run(
        binary,
        f"--kubeconfig={running.kubeconfig}",
        "--context=east",
        f"--cache-dir={running.cache}",
        "create",
        "namespace",
        "nope",
        stdin=None,
    )
    assert rc != 0
    assert "UnsupportedMediaType" in err or "unknown format" in err or "kubectl" in err
    assert "install kubectl" in err
    assert os.environ["PATH"] == str(tmp_path / "empty")
    assert "nope" not in [n["metadata"]["name"] for n in running.api.list("namespaces")["items"]]

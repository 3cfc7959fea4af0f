"""The protobuf body decoder against messages built with the schemas inside kubectl."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from google.protobuf import message_factory

from milkyway.sim.apiserver import errors
from milkyway.sim.apiserver.kubectl_schemas import KubectlSchemas, kubectl_schemas
from milkyway.sim.apiserver.protobuf_codec import MAGIC, decode_body


@pytest.fixture(scope="module")
def schemas() -> KubectlSchemas:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not on PATH: install kubectl 1.32 (Debian: kubernetes-client)")
    return kubectl_schemas()


def _new(schemas: KubectlSchemas, name: str) -> Any:
    return message_factory.GetMessageClass(schemas.pool.FindMessageTypeByName(name))()


def _body(schemas: KubectlSchemas, api_version: str, kind: str, typed: Any) -> bytes:
    unknown = _new(schemas, "k8s.io.apimachinery.pkg.runtime.Unknown")
    unknown.typeMeta.apiVersion = api_version
    unknown.typeMeta.kind = kind
    unknown.raw = typed.SerializeToString()
    return MAGIC + unknown.SerializeToString()


def test_special_types_get_their_json_forms(schemas: KubectlSchemas) -> None:
    pdb = _new(schemas, "k8s.io.api.policy.v1.PodDisruptionBudget")
    pdb.metadata.name = "web"
    pdb.metadata.creationTimestamp.seconds = 1_700_000_000
    pdb.spec.minAvailable.type = 1
    pdb.spec.minAvailable.strVal = "50%"
    pdb.spec.selector.matchLabels["app"] = "web"
    decoded = decode_body(_body(schemas, "policy/v1", "PodDisruptionBudget", pdb), schemas)
    assert decoded == {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "creationTimestamp": "2023-11-14T22:13:20Z"},
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}},
    }

    pod = _new(schemas, "k8s.io.api.core.v1.Pod")
    pod.metadata.name = "p"
    container = pod.spec.containers.add()
    container.name = "main"
    container.resources.limits["memory"].string = "128Mi"
    port = container.ports.add()
    port.containerPort = 8080
    container.stdin = False  # a non-pointer zero, as Go always writes it
    pod.spec.terminationGracePeriodSeconds = 0  # a pointer set to zero on purpose
    probe = container.readinessProbe
    probe.handler.httpGet.port.type = 0
    probe.handler.httpGet.port.intVal = 8080
    volume = pod.spec.volumes.add()
    volume.name = "data"
    volume.volumeSource.emptyDir.medium = "Memory"
    decoded = decode_body(_body(schemas, "v1", "Pod", pod), schemas)
    main = decoded["spec"]["containers"][0]
    assert main["resources"] == {"limits": {"memory": "128Mi"}}
    assert main["ports"] == [{"containerPort": 8080}]
    assert main["readinessProbe"] == {"httpGet": {"port": 8080}}
    assert "stdin" not in main
    # Go's inline embeddings are flattened, as in JSON.
    assert decoded["spec"]["volumes"] == [{"name": "data", "emptyDir": {"medium": "Memory"}}]
    assert decoded["spec"]["terminationGracePeriodSeconds"] == 0


def test_bad_bodies_are_400(schemas: KubectlSchemas) -> None:
    with pytest.raises(errors.ApiError) as missing_magic:
        decode_body(b"\x0a\x00", schemas)
    assert missing_magic.value.code == 400
    with pytest.raises(errors.ApiError) as unnamed:
        decode_body(MAGIC, schemas)
    assert unnamed.value.code == 400
    unknown = _new(schemas, "k8s.io.apimachinery.pkg.runtime.Unknown")
    unknown.typeMeta.apiVersion = "example.com/v1"
    unknown.typeMeta.kind = "Widget"
    with pytest.raises(errors.ApiError) as foreign:
        decode_body(MAGIC + unknown.SerializeToString(), schemas)
    assert foreign.value.code == 415 and "send this object as JSON" in foreign.value.message

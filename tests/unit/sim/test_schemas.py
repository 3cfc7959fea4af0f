import pytest

from milkyway.sim.apiserver.schemas import BuiltinSchemas


def test_builtin_kinds_resolve_to_their_definitions() -> None:
    schemas = BuiltinSchemas.for_version("1.32")
    assert schemas.definition_name(("", "v1", "Pod")) == "io.k8s.api.core.v1.Pod"
    assert (
        schemas.definition_name(("apps", "v1", "StatefulSet")) == "io.k8s.api.apps.v1.StatefulSet"
    )
    assert schemas.definition_for(("example.com", "v1", "Widget")) is None


def test_resolve_follows_references_to_merge_keys() -> None:
    schemas = BuiltinSchemas.for_version("1.32")
    pod = schemas.definition_for(("", "v1", "Pod"))
    assert pod is not None
    spec = schemas.resolve(pod["properties"]["spec"])
    containers = spec["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert schemas.resolve(containers["items"])["properties"]["image"]["type"] == ["string", "null"]


def test_unknown_version_names_the_shipped_ones() -> None:
    with pytest.raises(ValueError, match=r"ships no schemas for Kubernetes 0\.1; available: v1\."):
        BuiltinSchemas.for_version("0.1")

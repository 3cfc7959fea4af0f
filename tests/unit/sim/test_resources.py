"""The resource registry: name resolution, version preference and CRD-served resources."""

from __future__ import annotations

import pytest

from milkyway.sim.apiserver.discovery import Discovery, wants_aggregated
from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.apiserver.resources import ResourceInfo, ResourceRegistry, version_priority


@pytest.mark.parametrize(
    ("name", "group", "plural"),
    [
        ("pods", "", "pods"),
        ("po", "", "pods"),
        ("Pod", "", "pods"),
        ("deployments.apps", "apps", "deployments"),
        ("apps/v1/statefulsets", "apps", "statefulsets"),
        ("v1/configmaps", "", "configmaps"),
        ("leases", "coordination.k8s.io", "leases"),
        ("crd", "apiextensions.k8s.io", "customresourcedefinitions"),
    ],
)
def test_resolve_names(name: str, group: str, plural: str) -> None:
    info = ResourceRegistry().resolve(name)
    assert (info.group, info.plural) == (group, plural)


def test_unknown_names_are_404() -> None:
    with pytest.raises(ApiError) as missing:
        ResourceRegistry().resolve("widgets")
    assert missing.value.code == 404


def test_version_priority_matches_kubernetes_order() -> None:
    versions = ["v1alpha1", "v2", "foo", "v1beta2", "v1", "v1beta1", "v10"]
    assert sorted(versions, key=version_priority) == [
        "v10",
        "v2",
        "v1",
        "v1beta2",
        "v1beta1",
        "v1alpha1",
        "foo",
    ]


def test_crd_resources_come_and_go_with_discovery() -> None:
    registry = ResourceRegistry()
    discovery = Discovery(registry)
    before = discovery.group_list()
    infos = [
        ResourceInfo("example.com", v, "Widget", "widgets", "widget", True, custom=True)
        for v in ("v1beta1", "v1")
    ]
    registry.register_crd("widgets.example.com", infos)
    assert registry.versions_of("example.com") == ["v1", "v1beta1"]
    assert registry.resolve("widgets").version == "v1"
    group = next(g for g in discovery.group_list()["groups"] if g["name"] == "example.com")
    assert group["preferredVersion"]["version"] == "v1"
    assert discovery.resource_list("example.com", "v1beta1")["resources"][0]["kind"] == "Widget"
    registry.unregister_crd("widgets.example.com")
    assert discovery.group_list() == before
    assert registry.lookup("example.com", "v1", "widgets") is None


def test_aggregated_discovery_is_negotiated_from_accept() -> None:
    kubectl = (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
        "application/json"
    )
    assert wants_aggregated(kubectl) is not None and "v=v2;" in wants_aggregated(kubectl)
    assert wants_aggregated("application/json") is None

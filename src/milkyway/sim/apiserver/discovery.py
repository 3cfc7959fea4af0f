"""Discovery documents: what kubectl and client libraries read to learn the served resources.

Both forms are served: the classic per-group documents (``/api``, ``/apis``,
``/apis/<group>/<version>``) and aggregated discovery (``APIGroupDiscoveryList``), which
kubectl asks for first. Documents are rebuilt only when the registry changes.
"""

from __future__ import annotations

from typing import Any

from milkyway.sim.apiserver.resources import ResourceInfo, ResourceRegistry

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1_CONTENT_TYPE = (
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
)


def version_info(kubernetes_version: str) -> dict[str, str]:
    major, minor = kubernetes_version.split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{major}.{minor}.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def wants_aggregated(accept: str) -> str | None:
    """The aggregated-discovery content type the client accepts, if any (v2 preferred)."""
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")}
        if "as=APIGroupDiscoveryList" in params and "g=apidiscovery.k8s.io" in params:
            if "v=v2" in params:
                return AGGREGATED_CONTENT_TYPE
            if "v=v2beta1" in params:
                return AGGREGATED_V2BETA1_CONTENT_TYPE
    return None


class Discovery:
    """Discovery documents of one registry, cached per registry generation."""

    def __init__(self, registry: ResourceRegistry) -> None:
        self.registry = registry
        self._cache: dict[Any, Any] = {}
        self._generation = -1

    def _cached(self, key: Any, build: Any) -> Any:
        if self._generation != self.registry.generation:
            self._cache.clear()
            self._generation = self.registry.generation
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def api_versions(self, server_address: str) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
            ],
        }

    def _group_doc(self, group: str) -> dict[str, Any]:
        versions = self.registry.versions_of(group)
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0],
        }

    def group_list(self) -> dict[str, Any]:
        def build() -> dict[str, Any]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group_doc(g) for g in self.registry.groups() if g],
            }

        return self._cached("groups", build)

    def group(self, group: str) -> dict[str, Any] | None:
        if not group or not self.registry.versions_of(group):
            return None
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(group)}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        infos = self.registry.resources_of(group, version)
        if not infos:
            return None

        def build() -> dict[str, Any]:
            resources: list[dict[str, Any]] = []
            for info in infos:
                entry: dict[str, Any] = {
                    "name": info.plural,
                    "singularName": info.singular,
                    "namespaced": info.namespaced,
                    "kind": info.kind,
                    "verbs": list(info.verbs),
                }
                if info.short_names:
                    entry["shortNames"] = list(info.short_names)
                if info.categories:
                    entry["categories"] = list(info.categories)
                resources.append(entry)
                for sub in info.subresources:
                    sub_entry: dict[str, Any] = {
                        "name": f"{info.plural}/{sub.name}",
                        "singularName": "",
                        "namespaced": info.namespaced,
                        "kind": sub.kind or info.kind,
                        "verbs": list(sub.verbs),
                    }
                    if sub.group != info.group or (sub.version and sub.version != info.version):
                        sub_entry["group"] = sub.group
                        sub_entry["version"] = sub.version
                    resources.append(sub_entry)
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources,
            }

        return self._cached(("resources", group, version), build)

    def aggregated(self, core: bool, content_type: str) -> dict[str, Any]:
        """``APIGroupDiscoveryList`` for ``/api`` (core) or ``/apis`` (every named group)."""

        def build() -> dict[str, Any]:
            api_version = (
                "apidiscovery.k8s.io/v2"
                if content_type == AGGREGATED_CONTENT_TYPE
                else "apidiscovery.k8s.io/v2beta1"
            )
            groups = [""] if core else [g for g in self.registry.groups() if g]
            items = []
            for group in groups:
                versions = [
                    {
                        "version": version,
                        "resources": [
                            _aggregated_resource(info)
                            for info in self.registry.resources_of(group, version)
                        ],
                        "freshness": "Current",
                    }
                    for version in self.registry.versions_of(group)
                ]
                metadata: dict[str, Any] = {"creationTimestamp": None}
                if group:
                    metadata["name"] = group
                items.append({"metadata": metadata, "versions": versions})
            return {
                "kind": "APIGroupDiscoveryList",
                "apiVersion": api_version,
                "metadata": {},
                "items": items,
            }

        return self._cached(("aggregated", core, content_type), build)


def _aggregated_resource(info: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    if info.subresources:
        entry["subresources"] = [
            {
                "subresource": sub.name,
                "responseKind": {
                    "group": sub.group,
                    "version": sub.version or info.version,
                    "kind": sub.kind or info.kind,
                },
                "verbs": list(sub.verbs),
            }
            for sub in info.subresources
        ]
    return entry

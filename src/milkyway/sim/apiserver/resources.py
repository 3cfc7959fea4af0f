"""What the simulated API server serves: one :class:`ResourceInfo` per (group, version, plural).

Discovery, URL routing, OpenAPI publishing and the in-process API all read the same
:class:`ResourceRegistry`, so a CustomResourceDefinition registered at run time shows up
everywhere at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from milkyway.sim.apiserver.errors import ApiError, not_found

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CREATE_ONLY = ("create",)


@dataclass(frozen=True, slots=True)
class Subresource:
    """A subresource such as ``status`` or ``scale``, with what it answers as."""

    name: str
    kind: str
    group: str = ""
    version: str = ""
    verbs: tuple[str, ...] = ("get", "patch", "update")


@dataclass(frozen=True, slots=True)
class ScalePaths:
    """Where a custom resource keeps its replica counts (``spec.scale`` of a CRD)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """One served resource at one version."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...] = ALL_VERBS
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    list_kind: str = ""
    # Custom resources only: the version's structural schema, printer columns, scale paths.
    custom: bool = False
    schema: Any = None
    printer_columns: tuple[dict[str, Any], ...] | None = None
    scale_paths: ScalePaths | None = None
    storage_version: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """The storage key: every version of a resource shares one set of objects."""
        return (self.group, self.plural)

    @property
    def gvk(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.kind)

    @property
    def resource_name(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None

    @property
    def has_status(self) -> bool:
        return self.subresource("status") is not None


_PROXY_VERBS = ("create", "delete", "get", "patch", "update")
_STATUS = Subresource("status", "")
_SCALE = Subresource("scale", "Scale", "autoscaling", "v1")


def _builtin(
    group: str,
    version: str,
    kind: str,
    plural: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    subresources: tuple[Subresource, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
) -> ResourceInfo:
    subs = tuple(
        Subresource(s.name, kind, group, version, s.verbs) if s.name == "status" else s
        for s in subresources
    )
    return ResourceInfo(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        verbs=verbs,
        short_names=short,
        categories=categories,
        subresources=subs,
        list_kind=f"{kind}List",
    )


BUILTIN_RESOURCES: tuple[ResourceInfo, ...] = (
    _builtin(
        "",
        "v1",
        "Namespace",
        "namespaces",
        namespaced=False,
        short=("ns",),
        subresources=(_STATUS, Subresource("finalize", "Namespace", "", "v1", ("update",))),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _builtin(
        "",
        "v1",
        "Pod",
        "pods",
        short=("po",),
        categories=("all",),
        subresources=(
            _STATUS,
            Subresource("log", "Pod", "", "v1", ("get",)),
            Subresource("eviction", "Eviction", "policy", "v1", ("create",)),
            Subresource("binding", "Binding", "", "v1", ("create",)),
            Subresource("exec", "PodExecOptions", "", "v1", ("create", "get")),
            Subresource("portforward", "PodPortForwardOptions", "", "v1", ("create", "get")),
            Subresource("proxy", "PodProxyOptions", "", "v1", _PROXY_VERBS),
        ),
    ),
    _builtin(
        "",
        "v1",
        "Service",
        "services",
        short=("svc",),
        categories=("all",),
        subresources=(
            _STATUS,
            Subresource("proxy", "ServiceProxyOptions", "", "v1", _PROXY_VERBS),
        ),
    ),
    _builtin(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        short=("rc",),
        categories=("all",),
        subresources=(_STATUS, _SCALE),
    ),
    _builtin("", "v1", "Endpoints", "endpoints", short=("ep",)),
    _builtin("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    _builtin("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _builtin("", "v1", "Secret", "secrets"),
    _builtin("", "v1", "Event", "events", short=("ev",)),
    _builtin(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        short=("sa",),
        subresources=(
            Subresource("token", "TokenRequest", "authentication.k8s.io", "v1", ("create",)),
        ),
    ),
    _builtin("", "v1", "Node", "nodes", namespaced=False, short=("no",), subresources=(_STATUS,)),
    _builtin(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        namespaced=False,
        short=("pv",),
        subresources=(_STATUS,),
    ),
    _builtin(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        short=("pvc",),
        subresources=(_STATUS,),
    ),
    _builtin(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        short=("sts",),
        categories=("all",),
        subresources=(_STATUS, _SCALE),
    ),
    _builtin(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short=("deploy",),
        categories=("all",),
        subresources=(_STATUS, _SCALE),
    ),
    _builtin(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short=("rs",),
        categories=("all",),
        subresources=(_STATUS, _SCALE),
    ),
    _builtin(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        short=("ds",),
        categories=("all",),
        subresources=(_STATUS,),
    ),
    _builtin("apps", "v1", "ControllerRevision", "controllerrevisions"),
    _builtin("batch", "v1", "Job", "jobs", categories=("all",), subresources=(_STATUS,)),
    _builtin(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        short=("cj",),
        categories=("all",),
        subresources=(_STATUS,),
    ),
    _builtin(
        "networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",), subresources=(_STATUS,)
    ),
    _builtin("networking.k8s.io", "v1", "IngressClass", "ingressclasses", namespaced=False),
    _builtin("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=("netpol",)),
    _builtin(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        "apiservices",
        namespaced=False,
        categories=("api-extensions",),
        subresources=(_STATUS,),
    ),
    _builtin(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        short=("pdb",),
        subresources=(_STATUS,),
    ),
    _builtin("coordination.k8s.io", "v1", "Lease", "leases"),
    _builtin(
        "storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False, short=("sc",)
    ),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short=("crd", "crds"),
        categories=("api-extensions",),
        subresources=(_STATUS,),
    ),
    _builtin("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    _builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        namespaced=False,
    ),
    _builtin(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        namespaced=False,
        verbs=CREATE_ONLY,
    ),
    _builtin(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        namespaced=False,
        verbs=CREATE_ONLY,
    ),
    _builtin(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        namespaced=False,
        verbs=CREATE_ONLY,
    ),
    _builtin(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        verbs=CREATE_ONLY,
    ),
)

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key putting versions in Kubernetes' preference order (v2 > v1 > v1beta1 > v1alpha1)."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, version)


@dataclass
class _Group:
    name: str
    versions: dict[str, dict[str, ResourceInfo]] = field(default_factory=dict)


class ResourceRegistry:
    """Built-in resources plus those served from CustomResourceDefinitions.

    ``generation`` changes whenever the served set changes, so discovery documents and
    OpenAPI can be cached between changes.
    """

    def __init__(self, builtins: Iterable[ResourceInfo] = BUILTIN_RESOURCES) -> None:
        self._groups: dict[str, _Group] = {}
        self._by_gvk: dict[tuple[str, str, str], ResourceInfo] = {}
        self._crd_resources: dict[str, list[ResourceInfo]] = {}
        self.generation = 0
        for info in builtins:
            self._add(info)

    def _add(self, info: ResourceInfo) -> None:
        group = self._groups.setdefault(info.group, _Group(info.group))
        group.versions.setdefault(info.version, {})[info.plural] = info
        self._by_gvk[info.gvk] = info
        self.generation += 1

    def _remove(self, info: ResourceInfo) -> None:
        group = self._groups.get(info.group)
        if group is None:
            return
        served = group.versions.get(info.version, {})
        served.pop(info.plural, None)
        if not served:
            group.versions.pop(info.version, None)
        if not group.versions:
            self._groups.pop(info.group, None)
        if self._by_gvk.get(info.gvk) is info:
            del self._by_gvk[info.gvk]
        self.generation += 1

    def register_crd(self, crd_name: str, infos: list[ResourceInfo]) -> None:
        """Serve (or re-serve, replacing the previous definition) the versions of one CRD."""
        self.unregister_crd(crd_name)
        for info in infos:
            self._add(info)
        self._crd_resources[crd_name] = list(infos)

    def crd_infos(self, crd_name: str) -> list[ResourceInfo]:
        """The served versions of one CRD (empty when it serves none)."""
        return list(self._crd_resources.get(crd_name, ()))

    def unregister_crd(self, crd_name: str) -> list[ResourceInfo]:
        removed = self._crd_resources.pop(crd_name, [])
        for info in removed:
            self._remove(info)
        return removed

    def lookup(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        g = self._groups.get(group)
        if g is None:
            return None
        return g.versions.get(version, {}).get(plural)

    def require(self, group: str, version: str, plural: str) -> ResourceInfo:
        info = self.lookup(group, version, plural)
        if info is None:
            raise not_found(group, plural, "")
        return info

    def by_gvk(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        return self._by_gvk.get((group, version, kind))

    def for_object(self, obj: dict[str, Any]) -> ResourceInfo:
        """The resource an object belongs to, from its ``apiVersion`` and ``kind``."""
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if not isinstance(api_version, str) or not api_version:
            raise ApiError(400, "BadRequest", "Object 'apiVersion' is missing in the object")
        if not isinstance(kind, str) or not kind:
            raise ApiError(400, "BadRequest", "Object 'Kind' is missing in the object")
        group, _, version = api_version.rpartition("/")
        info = self._by_gvk.get((group, version, kind))
        if info is None:
            raise ApiError(
                404,
                "NotFound",
                f'the server could not find the requested resource: no kind "{kind}" is '
                f'registered for version "{api_version}"',
            )
        return info

    def resolve(self, name: str) -> ResourceInfo:
        """Resolve ``pods``, ``deployments.apps``, ``apps/v1/deployments``, ``Pod`` or ``po``.

        The preferred version of the group wins when no version is given.
        """
        if name.count("/") == 2:
            group, version, plural = name.split("/")
            return self.require(group, version, plural)
        if name.count("/") == 1:
            version, plural = name.split("/")
            return self.require("", version, plural)
        plural, _, group = name.partition(".")
        candidates: list[ResourceInfo] = []
        for g in self._groups.values():
            if group and g.name != group:
                continue
            for version in self.versions_of(g.name):
                for info in g.versions[version].values():
                    if plural in (info.plural, info.singular, info.kind) or plural in (
                        info.short_names
                    ):
                        candidates.append(info)
                        break
                if candidates and candidates[-1].group == g.name:
                    break
        if not candidates:
            raise ApiError(404, "NotFound", f'the server does not serve a resource named "{name}"')
        candidates.sort(key=lambda i: (i.group != "", i.group))
        return candidates[0]

    def versions_of(self, group: str) -> list[str]:
        """The group's served versions, preferred first."""
        g = self._groups.get(group)
        if g is None:
            return []
        return sorted(g.versions, key=version_priority)

    def groups(self) -> list[str]:
        """Group names: core first, then built-in order, then custom groups."""
        return list(self._groups)

    def resources_of(self, group: str, version: str) -> list[ResourceInfo]:
        g = self._groups.get(group)
        if g is None:
            return []
        return list(g.versions.get(version, {}).values())

    def __iter__(self) -> Iterator[ResourceInfo]:
        for g in list(self._groups.values()):
            for served in list(g.versions.values()):
                yield from list(served.values())

    def storage_keys(self) -> set[tuple[str, str]]:
        return {info.key for info in self}

"""A pure RBAC authorizer over the stored Role/ClusterRole/binding objects.

It decides like the real RBAC authorizer: a request is allowed when some binding that
applies to the user (by name, group or service account) grants a role with a rule that
matches the verb, API group, resource (``pods``, ``pods/log``, ``*/scale``, ``*``),
resource name and — for non-resource requests — URL. A RoleBinding grants only in its
namespace, also when it refers to a ClusterRole. ClusterRoles with an
``aggregationRule`` carry the rules of every ClusterRole their selectors match. Nothing
is ever denied explicitly: no match means "no opinion", which the server treats as a
denial. Members of ``system:masters`` are allowed everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from milkyway.sim.apiserver.selectors import label_selector_matches

SUPERUSER_GROUP = "system:masters"
_SA_PREFIX = "system:serviceaccount:"

Obj = dict[str, Any]


@dataclass(frozen=True)
class RequestAttributes:
    """Who asks to do what; ``path`` and ``resource_request=False`` for non-resource URLs."""

    user: str
    groups: tuple[str, ...] = ()
    verb: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""
    path: str = ""
    resource_request: bool = True


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass
class _Roles:
    roles: dict[tuple[str, str], Obj]
    cluster_roles: dict[str, Obj]
    missing: list[str] = field(default_factory=list)


def authorize(
    attrs: RequestAttributes,
    *,
    roles: Iterable[Obj],
    cluster_roles: Iterable[Obj],
    role_bindings: Iterable[Obj],
    cluster_role_bindings: Iterable[Obj],
) -> Decision:
    """Whether the stored RBAC objects allow the request, and why (as the real one says)."""
    if SUPERUSER_GROUP in attrs.groups:
        return Decision(True, "")
    index = _Roles(
        roles={(_ns(r), _name(r)): r for r in roles},
        cluster_roles={_name(r): r for r in cluster_roles},
    )
    for binding in cluster_role_bindings:
        decision = _check_binding(attrs, binding, index, namespaced=False)
        if decision is not None:
            return decision
    if attrs.namespace and attrs.resource_request:
        for binding in role_bindings:
            if _ns(binding) != attrs.namespace:
                continue
            decision = _check_binding(attrs, binding, index, namespaced=True)
            if decision is not None:
                return decision
    if not index.missing:
        return Decision(False, "")
    listed = index.missing[0] if len(index.missing) == 1 else f"[{', '.join(index.missing)}]"
    return Decision(False, f"RBAC: {listed}")


def _check_binding(
    attrs: RequestAttributes, binding: Obj, index: _Roles, *, namespaced: bool
) -> Decision | None:
    subject = _applying_subject(attrs, binding, namespaced=namespaced)
    if subject is None:
        return None
    ref = binding.get("roleRef") if isinstance(binding.get("roleRef"), dict) else {}
    role_kind, role_name = str(ref.get("kind", "")), str(ref.get("name", ""))
    if role_kind == "Role" and namespaced:
        role = index.roles.get((_ns(binding), role_name))
        if role is None:
            index.missing.append(f'role.rbac.authorization.k8s.io "{role_name}" not found')
            return None
        rules = _rules(role)
    elif role_kind == "ClusterRole":
        if role_name not in index.cluster_roles:
            index.missing.append(f'clusterrole.rbac.authorization.k8s.io "{role_name}" not found')
            return None
        rules = list(_cluster_role_rules(role_name, index.cluster_roles, set()))
    else:
        return None
    if not any(_rule_allows(attrs, rule) for rule in rules):
        return None
    where = (
        f'RoleBinding "{_name(binding)}/{_ns(binding)}"'
        if namespaced
        else f'ClusterRoleBinding "{_name(binding)}"'
    )
    who = _describe_subject(subject, _ns(binding))
    return Decision(True, f'RBAC: allowed by {where} of {role_kind} "{role_name}" to {who}')


def _applying_subject(attrs: RequestAttributes, binding: Obj, *, namespaced: bool) -> Obj | None:
    for subject in binding.get("subjects") or []:
        if not isinstance(subject, dict):
            continue
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "User" and name == attrs.user:
            return subject
        if kind == "Group" and name in attrs.groups:
            return subject
        if kind == "ServiceAccount":
            namespace = subject.get("namespace") or (_ns(binding) if namespaced else "")
            if namespace and attrs.user == f"{_SA_PREFIX}{namespace}:{name}":
                return subject
    return None


def _describe_subject(subject: Obj, binding_namespace: str) -> str:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


def _cluster_role_rules(name: str, cluster_roles: dict[str, Obj], seen: set[str]) -> Iterator[Obj]:
    """A ClusterRole's own rules plus, if aggregated, the rules of the roles it selects."""
    if name in seen or name not in cluster_roles:
        return
    seen.add(name)
    role = cluster_roles[name]
    yield from _rules(role)
    aggregation = role.get("aggregationRule")
    if not isinstance(aggregation, dict):
        return
    selectors = [s for s in aggregation.get("clusterRoleSelectors") or [] if isinstance(s, dict)]
    for other_name, other in sorted(cluster_roles.items()):
        labels = (other.get("metadata") or {}).get("labels") or {}
        if other_name != name and any(_selector_matches(s, labels) for s in selectors):
            yield from _cluster_role_rules(other_name, cluster_roles, seen)


def _selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    """An aggregation selector; an empty one selects nothing (it would aggregate every role)."""
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return False
    return label_selector_matches(selector, labels)


def _rule_allows(attrs: RequestAttributes, rule: Obj) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.resource_request:
        return _url_matches(attrs.path, rule.get("nonResourceURLs") or [])
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.api_group not in groups:
        return False
    if not _resource_matches(attrs, rule.get("resources") or []):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _resource_matches(attrs: RequestAttributes, resources: list[str]) -> bool:
    wanted = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    for resource in resources:
        if resource in ("*", wanted):
            return True
        if attrs.subresource and resource == f"*/{attrs.subresource}":
            return True
    return False


def _url_matches(path: str, urls: list[str]) -> bool:
    for url in urls:
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url[:-1]):
            return True
    return False


def _rules(role: Obj) -> list[Obj]:
    return [r for r in role.get("rules") or [] if isinstance(r, dict)]


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _ns(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))

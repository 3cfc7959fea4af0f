"""The RBAC authorizer: rules, bindings, subjects, aggregation and its reasons."""

from __future__ import annotations

from typing import Any

import pytest

from milkyway.sim.apiserver.rbac import Decision, RequestAttributes, authorize

RBAC = "rbac.authorization.k8s.io"


def role(name: str, rules: list[dict], namespace: str = "", **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    if "labels" in extra:
        metadata["labels"] = extra.pop("labels")
    return {"metadata": metadata, "rules": rules, **extra}


def binding(
    name: str, kind: str, role_name: str, subjects: list[dict], namespace: str = ""
) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "metadata": metadata,
        "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role_name},
        "subjects": subjects,
    }


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": RBAC, "name": name}


ROLES = [
    role(
        "pod-reader",
        [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}],
        "team-a",
    ),
    role(
        "cm-one",
        [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["settings"],
                "verbs": ["get", "update"],
            }
        ],
        "team-a",
    ),
]
CLUSTER_ROLES = [
    role("scaler", [{"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["*"]}]),
    role("node-viewer", [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]),
    role("health", [{"nonResourceURLs": ["/healthz", "/metrics/*"], "verbs": ["get"]}]),
    role("all-apps", [{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]}]),
    role(
        "monitoring",
        [],
        aggregationRule={
            "clusterRoleSelectors": [
                {"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true"}}
            ]
        },
    ),
    role(
        "monitoring-endpoints",
        [{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["list"]}],
        labels={"rbac.example.com/aggregate-to-monitoring": "true"},
    ),
]
CLUSTER_ROLE_BINDINGS = [
    binding(
        "ops-scaler", "ClusterRole", "scaler", [{"kind": "Group", "apiGroup": RBAC, "name": "ops"}]
    ),
    binding("nodes", "ClusterRole", "node-viewer", [user("carol")]),
    binding(
        "health",
        "ClusterRole",
        "health",
        [{"kind": "Group", "apiGroup": RBAC, "name": "system:authenticated"}],
    ),
    binding(
        "monitor",
        "ClusterRole",
        "monitoring",
        [{"kind": "ServiceAccount", "name": "prom", "namespace": "mon"}],
    ),
    binding("ghost", "ClusterRole", "does-not-exist", [user("dave")]),
]
ROLE_BINDINGS = [
    binding("alice-reads", "Role", "pod-reader", [user("alice")], "team-a"),
    binding("bob-settings", "Role", "cm-one", [user("bob")], "team-a"),
    binding(
        "bot-apps", "ClusterRole", "all-apps", [{"kind": "ServiceAccount", "name": "bot"}], "team-a"
    ),
    binding("dangling", "Role", "missing-role", [user("erin")], "team-a"),
]


def decide(**kwargs: Any) -> Decision:
    kwargs.setdefault("groups", ("system:authenticated",))
    return authorize(
        RequestAttributes(**kwargs),
        roles=ROLES,
        cluster_roles=CLUSTER_ROLES,
        role_bindings=ROLE_BINDINGS,
        cluster_role_bindings=CLUSTER_ROLE_BINDINGS,
    )


CASES = [
    (
        "role grants in its namespace",
        dict(user="alice", verb="list", resource="pods", namespace="team-a"),
        True,
        'RBAC: allowed by RoleBinding "alice-reads/team-a" of Role "pod-reader" to User "alice"',
    ),
    (
        "subresource listed",
        dict(
            user="alice",
            verb="get",
            resource="pods",
            subresource="log",
            name="p",
            namespace="team-a",
        ),
        True,
        None,
    ),
    (
        "subresource not listed",
        dict(
            user="alice",
            verb="get",
            resource="pods",
            subresource="exec",
            name="p",
            namespace="team-a",
        ),
        False,
        "",
    ),
    (
        "not in another namespace",
        dict(user="alice", verb="list", resource="pods", namespace="team-b"),
        False,
        "",
    ),
    (
        "verb not granted",
        dict(user="alice", verb="delete", resource="pods", name="p", namespace="team-a"),
        False,
        "",
    ),
    (
        "cluster scope not granted by a role",
        dict(user="alice", verb="list", resource="pods"),
        False,
        "",
    ),
    (
        "resourceNames match",
        dict(user="bob", verb="update", resource="configmaps", name="settings", namespace="team-a"),
        True,
        None,
    ),
    (
        "resourceNames exclude others",
        dict(user="bob", verb="update", resource="configmaps", name="other", namespace="team-a"),
        False,
        "",
    ),
    (
        "resourceNames exclude list",
        dict(user="bob", verb="list", resource="configmaps", namespace="team-a"),
        False,
        "",
    ),
    (
        "group subject and */scale",
        dict(
            user="u",
            groups=("ops",),
            verb="patch",
            api_group="apps",
            resource="statefulsets",
            subresource="scale",
            name="zk",
            namespace="x",
        ),
        True,
        'RBAC: allowed by ClusterRoleBinding "ops-scaler" of ClusterRole "scaler" to Group "ops"',
    ),
    (
        "*/scale is not the resource itself",
        dict(
            user="u",
            groups=("ops",),
            verb="patch",
            api_group="apps",
            resource="statefulsets",
            name="zk",
            namespace="x",
        ),
        False,
        "",
    ),
    (
        "api group must match",
        dict(user="carol", verb="get", api_group="apps", resource="nodes", name="n"),
        False,
        "",
    ),
    (
        "cluster role binding",
        dict(user="carol", verb="get", resource="nodes", name="n1"),
        True,
        'RBAC: allowed by ClusterRoleBinding "nodes" of ClusterRole "node-viewer" to User "carol"',
    ),
    (
        "non-resource exact",
        dict(user="x", verb="get", path="/healthz", resource_request=False),
        True,
        None,
    ),
    (
        "non-resource prefix",
        dict(user="x", verb="get", path="/metrics/cadvisor", resource_request=False),
        True,
        None,
    ),
    (
        "non-resource other",
        dict(user="x", verb="get", path="/version", resource_request=False),
        False,
        "",
    ),
    (
        "non-resource verb",
        dict(user="x", verb="post", path="/healthz", resource_request=False),
        False,
        "",
    ),
    (
        "service account via role binding namespace",
        dict(
            user="system:serviceaccount:team-a:bot",
            verb="get",
            api_group="apps",
            resource="deployments",
            subresource="status",
            name="d",
            namespace="team-a",
        ),
        True,
        'RBAC: allowed by RoleBinding "bot-apps/team-a" of ClusterRole "all-apps" '
        'to ServiceAccount "bot/team-a"',
    ),
    (
        "service account of another namespace",
        dict(
            user="system:serviceaccount:team-b:bot",
            verb="get",
            api_group="apps",
            resource="deployments",
            name="d",
            namespace="team-a",
        ),
        False,
        "",
    ),
    (
        "aggregated cluster role",
        dict(user="system:serviceaccount:mon:prom", verb="list", resource="endpoints"),
        True,
        'RBAC: allowed by ClusterRoleBinding "monitor" of ClusterRole "monitoring" '
        'to ServiceAccount "prom/mon"',
    ),
    (
        "missing cluster role is reported",
        dict(user="dave", verb="get", resource="pods", name="p"),
        False,
        'RBAC: clusterrole.rbac.authorization.k8s.io "does-not-exist" not found',
    ),
    (
        "missing role is reported",
        dict(user="erin", verb="get", resource="pods", name="p", namespace="team-a"),
        False,
        'RBAC: role.rbac.authorization.k8s.io "missing-role" not found',
    ),
    (
        "superuser",
        dict(user="admin", groups=("system:masters",), verb="delete", resource="nodes", name="n"),
        True,
        "",
    ),
    (
        "anonymous-ish user",
        dict(user="nobody", verb="get", resource="pods", name="p", namespace="team-a"),
        False,
        "",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "allowed", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rbac_decisions(kwargs: dict[str, Any], allowed: bool, reason: str | None) -> None:
    decision = decide(**kwargs)
    assert decision.allowed is allowed
    if reason is not None:
        assert decision.reason == reason


def test_several_missing_roles_are_listed_together() -> None:
    bindings = [
        binding("a", "ClusterRole", "gone-1", [user("x")]),
        binding("b", "ClusterRole", "gone-2", [user("x")]),
    ]
    decision = authorize(
        RequestAttributes(user="x", verb="get", resource="pods", name="p"),
        roles=[],
        cluster_roles=[],
        role_bindings=[],
        cluster_role_bindings=bindings,
    )
    assert decision == Decision(
        False,
        'RBAC: [clusterrole.rbac.authorization.k8s.io "gone-1" not found, '
        'clusterrole.rbac.authorization.k8s.io "gone-2" not found]',
    )


def test_aggregation_cycles_terminate_and_empty_selectors_select_nothing() -> None:
    cluster_roles = [
        role(
            "a",
            [],
            labels={"agg": "b"},
            aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"agg": "a"}}]},
        ),
        role(
            "b",
            [],
            labels={"agg": "a"},
            aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"agg": "b"}}]},
        ),
        role("c", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        role("d", [], aggregationRule={"clusterRoleSelectors": [{}]}),
    ]
    bindings = [
        binding("x", "ClusterRole", "a", [user("x")]),
        binding("y", "ClusterRole", "d", [user("y")]),
    ]
    for who in ("x", "y"):
        decision = authorize(
            RequestAttributes(user=who, verb="get", resource="pods", name="p"),
            roles=[],
            cluster_roles=cluster_roles,
            role_bindings=[],
            cluster_role_bindings=bindings,
        )
        assert decision == Decision(False, "")

"""What a member cluster grants Milkyway's operator, and the kubeconfig it reaches it with.

``milkyway cluster register`` applies :func:`member_rbac` to the member cluster with the
user's own (admin) credentials, asks for a token of the operator's ServiceAccount there,
and stores :func:`member_kubeconfig` in the management cluster. The operator never holds
the admin credentials: only what these roles allow.

With managed namespaces given, everything Milkyway does with namespaced objects (reading,
watching, writing, Secrets) is granted by RoleBindings in those namespaces only, and the
``Cluster`` lists them so that the operator watches only there. What stays cluster-wide is
on cluster-scoped kinds: nodes and volumes (a member on a lost node or failed disk is seen
only through them, and some patterns create PersistentVolumes) and reading namespaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MEMBER_NAMESPACE = "milkyway-system"
MEMBER_ACCOUNT = "milkyway-operator"
CLUSTER_ROLE = "milkyway-member"
WORKLOAD_ROLE = "milkyway-member-workloads"
LABELS = {"app.kubernetes.io/part-of": "milkyway", "app.kubernetes.io/managed-by": "milkyway-cli"}

_WATCH = ["list", "watch"]
_APPLY = ["patch", "delete"]
"""Milkyway writes by server-side apply (the ``patch`` verb creates and changes)."""

WORKLOAD_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["configmaps", "services"], "verbs": [*_WATCH, *_APPLY]},
    {
        "apiGroups": [""],
        "resources": ["persistentvolumeclaims", "pods"],
        "verbs": ["get", *_WATCH, *_APPLY],
    },
    {
        "apiGroups": ["apps"],
        "resources": ["statefulsets", "deployments"],
        "verbs": ["get", *_WATCH, *_APPLY],
    },
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": _WATCH},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": [*_WATCH, *_APPLY]},
    {
        "apiGroups": [""],
        "resources": ["secrets"],
        "verbs": ["get", "list", "create", "update", "patch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]
"""What Milkyway does in a namespace it manages: watching its objects (the operator's
member caches, one watch per kind and namespace), reading those a flow checks before
creating them, applying and deleting them (scale-in, decommission), the sidecar agents'
key Secret, the generated Secrets (created only when missing and replaced only
conditionally, so ``create`` and ``update``), requests to the agents through the pod
proxy, and the DiskAlert condition and Events it writes on member pods from the agents'
disk reports; after the last decommission the keys are deleted and what is left is
listed (a namespace Milkyway created is deleted only when empty). Bound per managed
namespace."""


def cluster_rules(namespaces_restricted: bool) -> list[dict[str, Any]]:
    """The cluster-wide rules, all on cluster-scoped kinds: nodes and volumes (a member on
    a lost node or failed disk is seen only through them; some patterns create volumes,
    and replaced members' volumes are deleted), and namespaces (applying one only when
    Milkyway may use any)."""
    namespace_verbs = ["get"] + ([] if namespaces_restricted else ["patch", "delete"])
    return [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": _WATCH},
        {
            "apiGroups": [""],
            "resources": ["persistentvolumes"],
            "verbs": ["get", *_WATCH, *_APPLY],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": namespace_verbs},
    ]


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(LABELS)}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def _subject() -> dict[str, Any]:
    return {"kind": "ServiceAccount", "name": MEMBER_ACCOUNT, "namespace": MEMBER_NAMESPACE}


def member_rbac(namespaces: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The member cluster's objects, in apply order: namespaces, the ServiceAccount, the
    roles and their bindings (RoleBindings in ``namespaces``, or one ClusterRoleBinding
    for every namespace when none are given)."""
    rbac = "rbac.authorization.k8s.io/v1"
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name)}
        for name in dict.fromkeys([MEMBER_NAMESPACE, *namespaces])
    ]
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(MEMBER_ACCOUNT, MEMBER_NAMESPACE),
        }
    )
    docs.append(
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": _meta(CLUSTER_ROLE),
            "rules": cluster_rules(bool(namespaces)),
        }
    )
    docs.append(
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": _meta(CLUSTER_ROLE),
            "roleRef": {
                "apiGroup": rbac.split("/")[0],
                "kind": "ClusterRole",
                "name": CLUSTER_ROLE,
            },
            "subjects": [_subject()],
        }
    )
    docs.append(
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": _meta(WORKLOAD_ROLE),
            "rules": WORKLOAD_RULES,
        }
    )
    ref = {"apiGroup": rbac.split("/")[0], "kind": "ClusterRole", "name": WORKLOAD_ROLE}
    if namespaces:
        docs.extend(
            {
                "apiVersion": rbac,
                "kind": "RoleBinding",
                "metadata": _meta(WORKLOAD_ROLE, namespace),
                "roleRef": ref,
                "subjects": [_subject()],
            }
            for namespace in dict.fromkeys(namespaces)
        )
    else:
        docs.append(
            {
                "apiVersion": rbac,
                "kind": "ClusterRoleBinding",
                "metadata": _meta(WORKLOAD_ROLE),
                "roleRef": ref,
                "subjects": [_subject()],
            }
        )
    return docs


def member_kubeconfig(
    name: str, server: str, ca_data: str | None, token: str, insecure: bool = False
) -> dict[str, Any]:
    """A kubeconfig with one context named like the Cluster (the operator picks the
    context named like its Cluster), authenticating with the ServiceAccount's token."""
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    elif insecure:
        cluster["insecure-skip-tls-verify"] = True
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": f"{name}-{MEMBER_ACCOUNT}", "user": {"token": token}}],
        "contexts": [
            {
                "name": name,
                "context": {"cluster": name, "user": f"{name}-{MEMBER_ACCOUNT}"},
            }
        ],
        "current-context": name,
    }

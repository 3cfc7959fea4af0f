"""What `milkyway cluster register` grants in a member cluster: with managed namespaces
given, nothing on namespaced kinds outside them (the member caches watch per namespace),
cluster-wide only cluster-scoped kinds; and a kubeconfig whose context is named like the
Cluster."""

from __future__ import annotations

import kubernetes_validate
from lightkube import KubeConfig

from milkyway.kube.member_access import (
    CLUSTER_ROLE,
    WORKLOAD_ROLE,
    member_kubeconfig,
    member_rbac,
)

WRITES = {"create", "update", "patch", "delete"}
CLUSTER_SCOPED = {"nodes", "persistentvolumes", "namespaces"}


def _kinds(docs: list[dict]) -> list[tuple[str, str, str | None]]:
    return [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs]


def test_restricted_to_namespaces() -> None:
    docs = member_rbac(["team-a", "team-b"])
    kinds = _kinds(docs)
    assert ("RoleBinding", WORKLOAD_ROLE, "team-a") in kinds
    assert ("RoleBinding", WORKLOAD_ROLE, "team-b") in kinds
    assert ("ClusterRoleBinding", WORKLOAD_ROLE, None) not in kinds
    assert ("Namespace", "team-a", None) in kinds
    cluster_role = next(
        d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == CLUSTER_ROLE
    )
    for rule in cluster_role["rules"]:
        if rule["resources"] != ["persistentvolumes"]:
            assert not WRITES & set(rule["verbs"]), rule
    assert all("secrets" not in rule["resources"] for rule in cluster_role["rules"]), (
        "no Secret of the member is readable outside the managed namespaces"
    )
    cluster_wide = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert cluster_wide == CLUSTER_SCOPED, "nothing namespaced is read outside the namespaces"
    for doc in docs:
        kubernetes_validate.validate(doc, "1.32", strict=True)


def test_unrestricted_binds_cluster_wide_and_may_apply_namespaces() -> None:
    docs = member_rbac([])
    assert ("ClusterRoleBinding", WORKLOAD_ROLE, None) in _kinds(docs)
    cluster_role = next(d for d in docs if d["metadata"]["name"] == CLUSTER_ROLE)
    namespaces = next(r for r in cluster_role["rules"] if r["resources"] == ["namespaces"])
    assert "patch" in namespaces["verbs"]
    restricted = next(d for d in member_rbac(["a"]) if d["metadata"]["name"] == CLUSTER_ROLE)
    assert (
        "patch"
        not in next(r for r in restricted["rules"] if r["resources"] == ["namespaces"])["verbs"]
    )


def test_kubeconfig_names_its_context_after_the_cluster() -> None:
    config = member_kubeconfig("na-phx-1", "https://10.0.0.1:6443", "Q0E=", "tok")
    single = KubeConfig.from_dict(config).get()
    assert single.context_name == "na-phx-1"
    assert single.cluster.certificate_auth_data == "Q0E=" and single.user.token == "tok"

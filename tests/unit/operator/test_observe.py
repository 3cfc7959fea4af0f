"""observe_zone: members from live objects, placeholders for missing ones, dead nodes and
failed disks."""

from __future__ import annotations

from typing import Any

from milkyway.kube.labels import CONFIG_HASH, MEMBER
from milkyway.operator.observe import observe_zone

SEL = {"milkyway.ebay.com/application": "a", "milkyway.ebay.com/component": "zk"}


def sts(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "a-zk-phx", "namespace": "ns", "labels": SEL},
        "spec": {"replicas": replicas},
    }


def pod(
    name: str, *, ready: bool = True, deleting: bool = False, node: str = "n1", **extra: Any
) -> dict:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "uid": f"uid-{name}-{deleting}",
        "labels": {**SEL, "app.kubernetes.io/version": "3.4.7", **extra.get("labels", {})},
        "annotations": {CONFIG_HASH: extra.get("hash", "h1")},
        "creationTimestamp": extra.get("created", "2026-01-01T00:00:00Z"),
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:10:00Z"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "nodeName": node,
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": f"data-{name}"}}],
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": "2026-01-01T00:05:00Z",
                }
            ],
            "containerStatuses": [{"name": "main", "restartCount": 2}],
        },
    }


def claim(name: str, volume: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "ns", "labels": SEL},
        "spec": {"volumeName": volume},
        "status": {"phase": "Bound"},
    }


def volume(name: str, phase: str = "Bound", node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if node:
        spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
                        ]
                    }
                ]
            }
        }
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": spec,
        "status": {"phase": phase},
    }


def node(name: str, ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}]},
    }


def test_statefulset_members_with_a_missing_ordinal() -> None:
    obs = observe_zone(
        "zk", "phx", "c1", [sts(3), pod("a-zk-phx-0"), pod("a-zk-phx-2", ready=False)]
    )

    assert [(m.name, m.ordinal, m.exists, m.ready) for m in obs.members] == [
        ("a-zk-phx-0", 0, True, True),
        ("a-zk-phx-1", 1, False, False),
        ("a-zk-phx-2", 2, True, False),
    ]
    first = obs.members[0]
    assert (first.version, first.config_hash, first.restarts, first.node) == (
        "3.4.7",
        "h1",
        2,
        "n1",
    )
    assert obs.members[2].not_ready_since == "2026-01-01T00:05:00Z"
    assert first.not_ready_since is None
    assert obs.ready_count == 1
    assert obs.get("apps/v1", "StatefulSet", "a-zk-phx", "ns") is not None


def test_the_live_pod_wins_over_a_terminating_one() -> None:
    old = pod("a-zk-phx-0", deleting=True, hash="old")
    new = pod("a-zk-phx-0", ready=False, hash="new", created="2026-01-01T00:11:00Z")
    obs = observe_zone("zk", "phx", "c1", [sts(1), old, new])

    (member,) = obs.members
    assert member.config_hash == "new" and not member.deleting


def test_failed_disk_and_dead_node() -> None:
    objects = [
        sts(2),
        pod("a-zk-phx-0", node="n1"),
        pod("a-zk-phx-1", node="n2"),
        claim("data-a-zk-phx-0", "pv0"),
        claim("data-a-zk-phx-1", "pv1"),
        volume("pv0", phase="Failed"),
        volume("pv1"),
        node("n1"),
        node("n2", ready=False),
    ]
    obs = observe_zone("zk", "phx", "c1", objects)

    assert [(m.volume_ok, m.node_ok) for m in obs.members] == [(False, True), (True, False)]


def test_unscheduled_member_pinned_to_a_lost_node() -> None:
    pending = pod("a-zk-phx-0", ready=False, node="")
    pending["spec"].pop("nodeName")
    objects = [
        sts(1),
        pending,
        claim("data-a-zk-phx-0", "pv0"),
        volume("pv0", node="gone"),
        node("n1"),
    ]

    (member,) = observe_zone("zk", "phx", "c1", objects).members
    assert member.node is None and not member.node_ok


def test_without_nodes_and_volumes_nothing_is_assumed_broken() -> None:
    (member,) = observe_zone("zk", "phx", "c1", [sts(1), pod("a-zk-phx-0")]).members
    assert member.node_ok and member.volume_ok


def test_per_member_deployment_with_its_pod_missing() -> None:
    labels = {**SEL, MEMBER: "4"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "a-zk-phx-m4", "namespace": "ns", "labels": labels},
        "spec": {"replicas": 1},
    }
    (member,) = observe_zone("zk", "phx", "c1", [deployment]).members
    assert (member.name, member.member_id, member.exists) == ("a-zk-phx-m4", 4, False)


def test_bare_pod_member_identity_from_its_label() -> None:
    member_pod = pod("a-zk-phx-m7", labels={MEMBER: "7"})
    (member,) = observe_zone("zk", "phx", "c1", [member_pod]).members
    assert (member.member_id, member.ordinal, member.exists) == (7, None, True)


def test_unreachable_zone_keeps_what_it_was_given() -> None:
    obs = observe_zone("zk", "phx", "c1", [], reachable=False)
    assert not obs.reachable and obs.members == () and dict(obs.objects) == {}

"""Scheduler filters, quantities, selectors, disruption budgets and pod status rendering."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.apiserver.selectors import label_selector_matches
from milkyway.sim.controllers.disruption import budget, check_eviction
from milkyway.sim.controllers.objects import (
    parse_quantity,
    scaled_int_or_percent,
)
from milkyway.sim.controllers.podstatus import ContainerRuntime, PodRuntime, render_status
from milkyway.sim.controllers.scheduler import Bind, NodeState, Unschedulable, VolumeView, schedule
from milkyway.sim.nodes import NodeSpec, node_object

from .world import ready_pod

labels = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y"]), max_size=3)


@given(labels=labels, wanted=labels)
def test_match_labels_selects_exactly_the_superset_maps(
    labels: dict[str, str], wanted: dict[str, str]
) -> None:
    expected = all(labels.get(k) == v for k, v in wanted.items())
    assert label_selector_matches({"matchLabels": wanted}, labels) == expected
    assert label_selector_matches(None, labels) is False


@given(labels=labels, key=st.sampled_from(["a", "b"]), values=st.lists(st.sampled_from(["x", "y"])))
def test_in_and_notin_are_complements(labels: dict[str, str], key: str, values: list[str]) -> None:
    inside = label_selector_matches(
        {"matchExpressions": [{"key": key, "operator": "In", "values": values}]}, labels
    )
    outside = label_selector_matches(
        {"matchExpressions": [{"key": key, "operator": "NotIn", "values": values}]}, labels
    )
    assert inside != outside


@pytest.mark.parametrize(
    ("text", "value"),
    [("100m", 0.1), ("2", 2.0), ("1Gi", 2.0**30), ("512Mi", 2.0**29), ("1e3", 1000.0), ("3k", 3e3)],
)
def test_quantities(text: str, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


def test_bad_quantity_names_the_value_and_the_fix() -> None:
    with pytest.raises(ValueError, match=r"'12 cores'.*'500m'"):
        parse_quantity("12 cores")


@given(pct=st.integers(0, 100), total=st.integers(0, 50))
def test_percentages_round_like_kubernetes(pct: int, total: int) -> None:
    up = scaled_int_or_percent(f"{pct}%", total, round_up=True)
    down = scaled_int_or_percent(f"{pct}%", total, round_up=False)
    assert down <= pct * total / 100 <= up and up - down <= 1


def _nodes(n: int, **spec: Any) -> list[NodeState]:
    return [NodeState(node_object(NodeSpec(name=f"n{i}", **spec), f"10.0.0.{i}")) for i in range(n)]


def _pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "i"}], **spec},
    }


NO_VOLUMES = VolumeView({}, {})


@settings(max_examples=50)
@given(
    tainted=st.sets(st.integers(0, 4)),
    tolerate=st.booleans(),
    cpu=st.integers(1, 12),
)
def test_scheduler_only_binds_to_feasible_nodes_and_counts_every_rejection(
    tainted: set[int], tolerate: bool, cpu: int
) -> None:
    nodes = _nodes(5)
    for i in tainted:
        nodes[i].node["spec"]["taints"] = [{"key": "k", "value": "v", "effect": "NoSchedule"}]
    tolerations = [{"key": "k", "operator": "Exists"}] if tolerate else []
    pod = _pod(
        tolerations=tolerations,
        containers=[{"name": "c", "image": "i", "resources": {"requests": {"cpu": str(cpu)}}}],
    )
    decision = schedule(pod, nodes, NO_VOLUMES)
    feasible = [i for i in range(5) if (tolerate or i not in tainted) and cpu <= 8]
    if feasible:
        assert isinstance(decision, Bind) and int(decision.node[1:]) in feasible
    else:
        assert isinstance(decision, Unschedulable)
        counts = [int(part.split()[0]) for part in decision.message.split(": ", 1)[1].split(", ")]
        assert sum(counts) == 5
        assert decision.message.startswith("0/5 nodes are available: ")


def test_scheduler_spreads_a_controllers_pods_and_respects_volume_affinity() -> None:
    nodes = _nodes(3)
    owner = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "s",
        "uid": "u1",
        "controller": True,
    }
    placed = []
    for i in range(3):
        pod = _pod()
        pod["metadata"] = {"name": f"s-{i}", "namespace": "ns", "ownerReferences": [owner]}
        decision = schedule(pod, nodes, NO_VOLUMES)
        assert isinstance(decision, Bind)
        placed.append(decision.node)
        next(s for s in nodes if s.node["metadata"]["name"] == decision.node).add(
            {**pod, "spec": {**pod["spec"], "nodeName": decision.node}}
        )
    assert sorted(placed) == ["n0", "n1", "n2"]
    claim = {"metadata": {"name": "c", "namespace": "ns"}, "spec": {"volumeName": "pv"}}
    pv = {
        "metadata": {"name": "pv"},
        "spec": {
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": ["n2"],
                                }
                            ]
                        }
                    ]
                }
            }
        },
    }
    pod = _pod(volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}])
    assert schedule(pod, nodes, VolumeView({("ns", "c"): claim}, {"pv": pv})) == Bind("n2")
    nodes[2].node["spec"]["taints"] = [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}
    ]
    decision = schedule(pod, nodes, VolumeView({("ns", "c"): claim}, {"pv": pv}))
    assert isinstance(decision, Unschedulable)
    assert "2 node(s) had volume node affinity conflict" in decision.message
    missing = schedule(pod, nodes, NO_VOLUMES)
    assert missing == Unschedulable('0/3 nodes are available: persistentvolumeclaim "c" not found.')


def _member(i: int, ready: bool) -> dict[str, Any]:
    return ready_pod(
        {"metadata": {"name": f"m-{i}", "namespace": "ns", "labels": {"app": "q"}}, "spec": {}},
        ready,
    )


@given(
    size=st.integers(1, 7),
    down=st.integers(0, 7),
    rule=st.sampled_from(["minAvailable", "maxUnavailable"]),
    value=st.one_of(st.integers(0, 7), st.sampled_from(["50%", "34%", "100%"])),
)
def test_eviction_is_allowed_exactly_when_the_budget_has_room(
    size: int, down: int, rule: str, value: Any
) -> None:
    pods = [_member(i, ready=i >= down) for i in range(size)]
    pdb = {
        "metadata": {"name": "q", "namespace": "ns"},
        "spec": {rule: value, "selector": {"matchLabels": {"app": "q"}}},
    }
    b = budget(pdb, pods)
    assert b.disruptions_allowed == max(0, b.current_healthy - b.desired_healthy)
    healthy = [p for p in pods if p["status"]["conditions"][0]["status"] == "True"]
    if not healthy:
        return
    if b.disruptions_allowed > 0:
        assert check_eviction(healthy[0], [pdb], lambda _: pods) == pdb
    else:
        with pytest.raises(ApiError) as refused:
            check_eviction(healthy[0], [pdb], lambda _: pods)
        assert refused.value.code == 429


def test_two_budgets_on_one_pod_is_a_500() -> None:
    pods = [_member(0, True)]
    pdb = {"metadata": {"name": "a", "namespace": "ns"}, "spec": {"selector": {}}}
    with pytest.raises(ApiError) as err:
        check_eviction(
            pods[0], [pdb, {**pdb, "metadata": {"name": "b", "namespace": "ns"}}], lambda _: pods
        )
    assert err.value.code == 500


@given(
    ready=st.lists(st.booleans(), min_size=1, max_size=3),
    gate=st.sampled_from([None, "True", "False"]),
)
def test_pod_is_ready_iff_all_containers_and_gates_are(ready: list[bool], gate: str | None) -> None:
    runtime = PodRuntime(host_ip="10.0.0.1", pod_ip="10.1.0.1", phase="Running")
    runtime.containers = [
        ContainerRuntime(f"c{i}", "img", started_at="t", waiting_reason="", ready=r)
        for i, r in enumerate(ready)
    ]
    pod: dict[str, Any] = {"spec": {}, "status": {}}
    if gate is not None:
        pod["spec"]["readinessGates"] = [{"conditionType": "g"}]
        pod["status"]["conditions"] = [{"type": "g", "status": gate}]
    status = render_status(pod, runtime, "2026-01-01T00:00:00Z")
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert (conditions["Ready"] == "True") == (all(ready) and gate in (None, "True"))
    assert conditions["ContainersReady"] == ("True" if all(ready) else "False")
    assert [c["ready"] for c in status["containerStatuses"]] == ready

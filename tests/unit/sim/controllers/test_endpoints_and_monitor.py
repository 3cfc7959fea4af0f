"""Endpoints/EndpointSlice rendering, the informer's indexes, and the monitor's tallies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from milkyway.sim.apiserver.patching import merge_patch
from milkyway.sim.apiserver.schemas import BuiltinSchemas
from milkyway.sim.apiserver.validation import validate_builtin
from milkyway.sim.controllers.actions import ENDPOINT_SLICES, ENDPOINTS, Create, Patch
from milkyway.sim.controllers.endpoints import reconcile_service
from milkyway.sim.controllers.informer import Informer
from milkyway.sim.monitor import Tally, Transition

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "zk", "namespace": "ns", "uid": "svc"},
    "spec": {"selector": {"app": "zk"}, "ports": [{"name": "client", "port": 2181}]},
}


def member(i: int, ready: bool, terminating: bool = False) -> dict[str, Any]:
    md: dict[str, Any] = {
        "name": f"zk-{i}",
        "namespace": "ns",
        "uid": f"u{i}",
        "labels": {"app": "zk"},
    }
    if terminating:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": md,
        "spec": {"nodeName": "n0", "hostname": f"zk-{i}"},
        "status": {
            "phase": "Running",
            "podIP": f"10.0.0.{i + 1}",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=6))
def test_endpoints_split_ready_and_not_ready_and_slices_agree(
    states: list[tuple[bool, bool]],
) -> None:
    pods = [member(i, ready, terminating) for i, (ready, terminating) in enumerate(states)]
    actions = reconcile_service(SERVICE, pods, None, None)
    endpoints = next(a.obj for a in actions if isinstance(a, Create) and a.resource == ENDPOINTS)
    slice_ = next(a.obj for a in actions if isinstance(a, Create) and a.resource == ENDPOINT_SLICES)
    subset = endpoints["subsets"][0] if endpoints["subsets"] else {}
    ready = {a["targetRef"]["name"] for a in subset.get("addresses", [])}
    not_ready = {a["targetRef"]["name"] for a in subset.get("notReadyAddresses", [])}
    expected = {f"zk-{i}" for i, (r, t) in enumerate(states) if r and not t}
    assert ready == expected
    assert not_ready == {f"zk-{i}" for i in range(len(states))} - expected
    assert {
        e["targetRef"]["name"] for e in slice_["endpoints"] if e["conditions"]["ready"]
    } == expected
    assert slice_["metadata"]["labels"]["kubernetes.io/service-name"] == "zk"
    assert reconcile_service(SERVICE, pods, endpoints, slice_) == []


def test_a_slice_whose_pods_all_went_stays_a_valid_empty_slice() -> None:
    pods = [member(0, ready=True)]
    created = reconcile_service(SERVICE, pods, None, None)
    endpoints = next(a.obj for a in created if isinstance(a, Create) and a.resource == ENDPOINTS)
    slice_ = next(a.obj for a in created if isinstance(a, Create) and a.resource == ENDPOINT_SLICES)
    patch = next(
        a
        for a in reconcile_service(SERVICE, [], endpoints, slice_)
        if isinstance(a, Patch) and a.resource == ENDPOINT_SLICES
    )
    emptied = merge_patch(slice_, patch.patch)
    assert emptied["endpoints"] == []
    assert validate_builtin(emptied, BuiltinSchemas.for_version()) == []


def test_informer_indexes_follow_updates_and_deletes() -> None:
    informer = Informer("v1/pods")
    informer.add_index(
        "node", lambda p: [p["spec"]["nodeName"]] if p["spec"].get("nodeName") else []
    )
    seen: list[str] = []
    informer.on_change(lambda t, old, new: seen.append(t))
    pod = {"metadata": {"name": "a", "namespace": "ns"}, "spec": {}}
    informer.apply("ADDED", pod)
    assert informer.by_index("node", "n1") == []
    bound = {**pod, "spec": {"nodeName": "n1"}}
    informer.apply("MODIFIED", bound)
    assert informer.by_index("node", "n1") == [bound]
    moved = {**pod, "spec": {"nodeName": "n2"}}
    informer.apply("MODIFIED", moved)
    assert informer.by_index("node", "n1") == [] and informer.by_index("node", "n2") == [moved]
    informer.apply("DELETED", moved)
    assert informer.by_index("node", "n2") == [] and informer.get("ns", "a") is None
    assert informer.index_values("node") == []
    assert seen == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]


def test_tally_tracks_the_worst_instant_since_reset() -> None:
    tally = Tally({"app": "zk"}, namespace="ns")
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def t(name: str, ready: bool, alive: bool = True, app: str = "zk") -> Transition:
        return Transition("c", "ns", name, {"app": app}, ready, alive, at)

    for i in range(3):
        tally(t(f"zk-{i}", True))
    tally(t("other", False, app="web"))
    tally.reset()
    assert tally.max_down(3) == 0
    tally(t("zk-2", False))
    tally(t("zk-2", False, alive=False))
    tally(t("zk-2", False))
    tally(t("zk-2", True))
    tally(t("zk-1", False))
    tally(t("zk-1", True))
    assert tally.max_down(3) == 1 and tally.max_alive == 3 and len(tally.history) == 6

"""Which changes wake an Application up: the leader's event handlers only enqueue, and
only for a change the reconcile could decide differently on."""

from __future__ import annotations

import copy
from typing import Any

from lightkube import AsyncClient, KubeConfig

from milkyway.operator.manager import Operator, OperatorSettings, _Session, run_fingerprint
from milkyway.operator.reconciler import Wisb, ZonePlacement

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "mgmt", "cluster": {"server": "https://127.0.0.1:1"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "mgmt", "context": {"cluster": "mgmt", "user": "u"}}],
    "current-context": "mgmt",
}


def flow_run(phase: str = "Running", progress: str = "1/4", lease: str = "t1") -> dict[str, Any]:
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "FlowRun",
        "metadata": {
            "name": "run-1",
            "namespace": "ns",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "resourceVersion": "5",
            "labels": {"milkyway.ebay.com/application": "app"},
        },
        "spec": {"flow": "milkyway-config-update"},
        "status": {"phase": phase, "progress": progress, "owner": "e", "leaseUntil": lease},
    }


async def session() -> _Session:
    operator = Operator(KUBECONFIG, "mgmt", OperatorSettings(leader_election=False))
    operator.client = AsyncClient(KubeConfig.from_dict(KUBECONFIG).get("mgmt"))
    return _Session(operator)


async def drain(s: _Session) -> list[Any]:
    keys = []
    while len(s.queue):
        key = await s.queue.get()
        s.queue.done(key)
        keys.append(key)
    return keys


def test_a_lease_renewal_leaves_the_fingerprint_alone_and_progress_does_not() -> None:
    base = run_fingerprint(flow_run())
    renewed = flow_run(lease="t2")
    renewed["metadata"]["resourceVersion"] = "6"
    assert run_fingerprint(renewed) == base
    assert run_fingerprint(flow_run(progress="2/4")) != base
    assert run_fingerprint(flow_run(phase="Succeeded")) != base


async def test_a_flowrun_status_write_that_changes_nothing_read_wakes_nobody() -> None:
    s = await session()
    try:
        s._run_changed("ADDED", flow_run())
        assert await drain(s) == [("ns", "app")]
        s._run_changed("MODIFIED", flow_run(lease="t2"))
        assert await drain(s) == []
        s._run_changed("MODIFIED", flow_run(progress="2/4", lease="t3"))
        assert await drain(s) == [("ns", "app")]
        deleted = copy.deepcopy(flow_run(progress="2/4", lease="t3"))
        s._run_changed("DELETED", deleted)
        assert await drain(s) == [("ns", "app")]
        assert s._runs[("ns", "app")] == {}
    finally:
        await s.client.close()


async def test_a_finished_flow_wakes_its_application_and_is_recorded() -> None:
    s = await session()
    recorded: list[tuple[Any, str, str]] = []

    async def record(obj: Any, reason: str, message: str, *, warning: bool = False) -> None:
        recorded.append((obj, reason, message))

    s.recorder.record = record  # type: ignore[method-assign]
    s.applications.cache[("ns", "app")] = {"metadata": {"name": "app", "namespace": "ns"}}
    try:
        s._run_changed("ADDED", flow_run())
        await drain(s)
        s._run_changed("MODIFIED", flow_run(phase="Succeeded", progress="4/4"))
        assert await drain(s) == [("ns", "app")]
        for task in list(s._background):
            await task
        assert [r[1] for r in recorded] == ["FlowSucceeded"]
    finally:
        await s.client.close()


async def test_a_cluster_flapping_wakes_only_the_applications_placed_on_it() -> None:
    s = await session()
    try:
        for name in ("on-m0", "on-m1", "new"):
            s.applications.cache[("ns", name)] = {"metadata": {"name": name, "namespace": "ns"}}
        for name, cluster in (("on-m0", "m0"), ("on-m1", "m1")):
            placement = ZonePlacement(clusters={"z": cluster})
            s.reconciler._wisb_cache[("ns", name)] = Wisb((), None, placement, {})  # type: ignore[arg-type]
        s._reachability_changed("m0")
        assert sorted(await drain(s)) == [("ns", "new"), ("ns", "on-m0")]
        s._cluster_changed("m0")
        assert sorted(await drain(s)) == [("ns", "new"), ("ns", "on-m0"), ("ns", "on-m1")]
    finally:
        await s.client.close()

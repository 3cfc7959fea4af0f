"""Pure helpers of the lifecycle tasks: waiting while unreachable, the pausable deadline,
pod readiness and currency, immutable StatefulSet fields kept on apply."""

from __future__ import annotations

import asyncio
import logging

import httpx
import httpx2
import pytest
from lightkube.core.exceptions import ApiError

from milkyway.flows.tasks import TaskContext
from milkyway.operator.tasks.common import (
    Clock,
    call,
    keep_immutable,
    member_of,
    pod_current,
    pod_ready,
)


def _api_error(code: int) -> ApiError:
    response = httpx.Response(
        code, json={"code": code, "message": "x"}, request=httpx.Request("GET", "http://x")
    )
    return ApiError(response=response)


def test_clock_does_not_count_time_while_unreachable() -> None:
    clock = Clock(0.05)
    clock._last -= 1.0
    clock.tick(counted=False)
    assert not clock.expired
    clock._last -= 1.0
    clock.tick()
    assert clock.expired


async def test_call_waits_while_unreachable_and_heartbeats() -> None:
    beats: list[str] = []
    ctx = TaskContext("run", "step", 1, {}, logging.getLogger("t"), on_heartbeat=beats.append)
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            # What lightkube raises on a refused connection (its own httpx fork).
            raise httpx2.ConnectError("refused")
        return "ok"

    from milkyway.operator.tasks import common

    previous, common.UNREACHABLE_POLL = common.UNREACHABLE_POLL, 0.01
    try:
        assert await asyncio.wait_for(call(ctx, "c1", "list pods", flaky), 5) == "ok"
    finally:
        common.UNREACHABLE_POLL = previous
    assert attempts == 3
    assert len(beats) == 2 and all("cluster c1 unreachable" in b for b in beats)


async def test_call_raises_other_errors() -> None:
    ctx = TaskContext("run", "step", 1, {}, logging.getLogger("t"))

    async def broken() -> None:
        raise ValueError("bad manifest")

    with pytest.raises(ValueError, match="bad manifest"):
        await call(ctx, "c1", "apply", broken)


def _pod(ready: bool, hash_: str = "h", version: str = "1", deleting: bool = False) -> dict:
    metadata = {
        "name": "p-0",
        "labels": {"app.kubernetes.io/version": version, "milkyway.ebay.com/member": "3"},
        "annotations": {"milkyway.ebay.com/config-hash": hash_},
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": metadata,
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_pod_ready_current_and_membership() -> None:
    assert pod_ready(_pod(True)) and not pod_ready(_pod(False))
    assert not pod_ready(_pod(True, deleting=True))
    assert pod_current(_pod(True), "h", "1") and not pod_current(_pod(True), "other", "1")
    assert not pod_current(_pod(True), "h", "2") and pod_current(_pod(True), "", "")
    assert member_of(_pod(True), "p-0", -1) and member_of(_pod(True), "x", 3)
    assert not member_of(_pod(True), "x", 4)


def test_keep_immutable_uses_the_live_claim_templates() -> None:
    live = {"spec": {"volumeClaimTemplates": [{"metadata": {"labels": {"v": "1"}}, "status": {}}]}}
    manifest = {
        "kind": "StatefulSet",
        "spec": {"replicas": 3, "volumeClaimTemplates": [{"metadata": {"labels": {"v": "2"}}}]},
    }
    kept = keep_immutable(manifest, live)
    assert kept["spec"]["volumeClaimTemplates"] == [{"metadata": {"labels": {"v": "1"}}}]
    assert kept["spec"]["replicas"] == 3
    assert keep_immutable(manifest, None) is manifest


def test_still_waiting_heartbeats_then_fails_retryably_past_the_deadline() -> None:
    from milkyway.flows.tasks import RetryableError
    from milkyway.operator.tasks.common import still_waiting

    beats: list[str] = []
    ctx = TaskContext("run", "step", 1, {}, logging.getLogger("t"), on_heartbeat=beats.append)
    clock = Clock(10.0)
    still_waiting(ctx, clock, "2/3 Ready", "not Ready after 10s")
    assert beats == ["2/3 Ready"]
    clock._last -= 11.0
    with pytest.raises(RetryableError, match="not Ready after 10s"):
        still_waiting(ctx, clock, "2/3 Ready", "not Ready after 10s")

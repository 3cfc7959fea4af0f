"""Approval gates in the pure core: who may decide, timeouts, and the record kept."""

from __future__ import annotations

from typing import Any

import pytest

from milkyway.flows import events as ev
from milkyway.flows.core import ApprovalDenied, InvalidRequest
from milkyway.model.flow import FlowSpec


def _flow(default: str = "reject", timeout: float | None = 60.0) -> dict[str, FlowSpec]:
    approval: dict[str, Any] = {"users": ["bob"], "groups": ["sre"], "default": default}
    if timeout is not None:
        approval["timeout"] = timeout
    spec = FlowSpec.model_validate(
        {
            "steps": [
                {"name": "prepare", "action": "t"},
                {"name": "confirm", "approval": approval},
                {"name": "apply", "action": "t"},
            ]
        }
    )
    return {"gated@1": spec}


def _waiting(core_driver: Any, **kw: Any) -> Any:
    driver = core_driver.for_flows(_flow(**kw), requested_by="alice")
    driver.start()
    driver.succeed("prepare")
    assert driver.status.nodes["confirm"].phase == "Waiting"
    assert any(n.reason == "ApprovalRequired" for n in driver.notices)
    return driver


def test_requester_cannot_approve_their_own_run(core_driver: Any) -> None:
    driver = _waiting(core_driver)
    before = driver.status
    with pytest.raises(ApprovalDenied, match="requested this run"):
        driver.apply(ev.Decide(now=5, actor="alice", path="confirm", groups=("sre",)))
    assert driver.status is before
    assert before.nodes["confirm"].phase == "Waiting"


def test_only_listed_users_or_groups_may_approve(core_driver: Any) -> None:
    driver = _waiting(core_driver)
    with pytest.raises(ApprovalDenied, match="may not decide"):
        driver.apply(ev.Decide(now=5, actor="mallory", path="confirm", groups=("dev",)))
    driver.apply(ev.Decide(now=7, actor="carol", path="confirm", groups=("sre",), reason="ok"))
    node = driver.status.nodes["confirm"]
    assert node.phase == "Succeeded"
    assert node.decision is not None
    assert (node.decision.by, node.decision.at, node.decision.reason) == ("carol", 7, "ok")
    assert "apply" in driver.running


def test_rejection_fails_the_run_and_records_who(core_driver: Any) -> None:
    driver = _waiting(core_driver)
    driver.apply(ev.Decide(now=9, actor="bob", path="confirm", approved=False, reason="not now"))
    node = driver.status.nodes["confirm"]
    assert node.phase == "Failed"
    assert node.decision is not None and node.decision.by == "bob"
    assert driver.status.phase == "Failed"
    assert driver.status.nodes["apply"].phase == "Omitted"


@pytest.mark.parametrize(("default", "phase"), [("approve", "Succeeded"), ("reject", "Failed")])
def test_timed_out_approval_takes_its_default(core_driver: Any, default: str, phase: str) -> None:
    driver = _waiting(core_driver, default=default, timeout=60.0)
    started = driver.status.nodes["confirm"].started_at
    assert driver.wake == started + 60.0
    driver.tick()
    node = driver.status.nodes["confirm"]
    assert node.phase == phase
    assert node.decision is not None
    assert node.decision.by == "system:timeout"
    assert node.decision.at == started + 60.0
    assert node.decision.approved is (default == "approve")


def test_decision_on_a_step_that_is_not_waiting_is_refused(core_driver: Any) -> None:
    driver = core_driver.for_flows(_flow(), requested_by="alice")
    driver.start()
    with pytest.raises(InvalidRequest, match="not waiting"):
        driver.apply(ev.Decide(now=1, actor="bob", path="confirm"))
    with pytest.raises(InvalidRequest, match="not an approval"):
        driver.apply(ev.Decide(now=1, actor="bob", path="prepare"))


def test_requester_may_reject_their_own_run(core_driver: Any) -> None:
    driver = _waiting(core_driver)
    driver.apply(ev.Decide(now=3, actor="alice", path="confirm", approved=False, reason="oops"))
    assert driver.status.nodes["confirm"].phase == "Failed"


def test_approvers_can_come_from_the_run_parameters(core_driver: Any) -> None:
    spec = FlowSpec.model_validate(
        {
            "parameters": {"approvers": {"type": "object"}},
            "steps": [
                {
                    "name": "confirm",
                    "approval": {
                        "users": ["${{ params.approvers.users }}"],
                        "groups": ["${{ params.approvers.groups }}", "sre"],
                    },
                },
                {"name": "apply", "action": "t"},
            ],
        }
    )
    params = {"approvers": {"users": ["dana"], "groups": ["dba"]}}
    driver = core_driver.for_flows({"gated@1": spec}, params=params)
    driver.start()
    assert driver.status.nodes["confirm"].params == {"users": ["dana"], "groups": ["dba", "sre"]}
    assert any("dana, dba, sre" in n.message for n in driver.notices)
    with pytest.raises(ApprovalDenied, match=r"allowed users: \['dana'\]"):
        driver.apply(ev.Decide(now=5, actor="bob", path="confirm", groups=("dev",)))
    driver.apply(ev.Decide(now=6, actor="erin", path="confirm", groups=("dba",)))
    assert driver.status.nodes["confirm"].phase == "Succeeded"

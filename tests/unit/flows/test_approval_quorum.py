"""N of M approvals, one approver counting once, gates that take only the server's signed
decisions, and gates put in front of a flow."""

from __future__ import annotations

from typing import Any

import pytest

from milkyway.flows import events as ev
from milkyway.flows.core import ApprovalDenied, InvalidRequest
from milkyway.flows.gates import with_gates
from milkyway.model.flow import FlowSpec, Step


def _flow(**approval: Any) -> dict[str, FlowSpec]:
    spec = FlowSpec.model_validate(
        {
            "steps": [
                {"name": "confirm", "approval": {"groups": ["sre"], "timeout": 60, **approval}},
                {"name": "apply", "action": "t"},
            ]
        }
    )
    return {"gated@1": spec}


def _waiting(core_driver: Any, **approval: Any) -> Any:
    driver = core_driver.for_flows(_flow(**approval), requested_by="alice")
    driver.start()
    assert driver.status.nodes["confirm"].phase == "Waiting"
    return driver


def _approve(driver: Any, actor: str, now: float, **kw: Any) -> None:
    driver.apply(ev.Decide(now=now, actor=actor, path="confirm", groups=("sre",), **kw))


def test_two_of_many_need_two_distinct_approvers(core_driver: Any) -> None:
    driver = _waiting(core_driver, required=2)
    _approve(driver, "bob", 5)
    node = driver.status.nodes["confirm"]
    assert node.phase == "Waiting"
    assert "1 of 2 approvals (bob)" in node.message
    assert "apply" not in driver.running
    with pytest.raises(InvalidRequest, match=r"already approved .* counts once"):
        _approve(driver, "bob", 6)
    assert driver.status.nodes["confirm"].phase == "Waiting"
    _approve(driver, "carol", 7, reason="ok")
    node = driver.status.nodes["confirm"]
    assert node.phase == "Succeeded"
    assert node.decision is not None and node.decision.by == "bob,carol"
    assert [d.by for d in node.approvals or []] == ["bob", "carol"]
    assert "apply" in driver.running


def test_the_requester_never_counts(core_driver: Any) -> None:
    driver = _waiting(core_driver, required=2)
    _approve(driver, "bob", 5)
    with pytest.raises(ApprovalDenied, match="requested this run"):
        _approve(driver, "alice", 6)
    assert driver.status.nodes["confirm"].phase == "Waiting"


def test_one_rejection_fails_a_quorum_gate(core_driver: Any) -> None:
    driver = _waiting(core_driver, required=3)
    _approve(driver, "bob", 5)
    driver.apply(ev.Decide(now=6, actor="carol", path="confirm", groups=("sre",), approved=False))
    assert driver.status.nodes["confirm"].phase == "Failed"
    assert driver.status.phase == "Failed"
    assert driver.status.nodes["apply"].phase == "Omitted"


def test_a_partial_quorum_times_out_to_the_default(core_driver: Any) -> None:
    driver = _waiting(core_driver, required=2)
    _approve(driver, "bob", 5)
    driver.tick()
    node = driver.status.nodes["confirm"]
    assert node.phase == "Failed"
    assert node.decision is not None and node.decision.by == "system:timeout"


def test_a_proof_gate_refuses_unsigned_decisions(core_driver: Any) -> None:
    driver = _waiting(core_driver, proof=True)
    with pytest.raises(ApprovalDenied, match="only through milkyway server"):
        _approve(driver, "bob", 5)
    with pytest.raises(ApprovalDenied, match="only through milkyway server"):
        driver.apply(ev.Decide(now=5, actor="bob", path="confirm", groups=("sre",), approved=False))
    assert driver.status.nodes["confirm"].phase == "Waiting"
    _approve(driver, "bob", 6, proven=True)
    assert driver.status.nodes["confirm"].phase == "Succeeded"


def _gate(name: str) -> Step:
    return Step.model_validate({"name": name, "approval": {"users": ["bob"], "proof": True}})


def test_gates_run_before_every_step_of_the_flow() -> None:
    spec = FlowSpec.model_validate(
        {
            "steps": [
                {"name": "announce", "action": "t"},
                {"name": "drain", "action": "t"},
                {"name": "side", "action": "t", "after": []},
            ],
            "finally": [{"name": "cleanup", "action": "t"}],
        }
    )
    gated = with_gates(spec, [_gate("approval-a"), _gate("announce")])
    names = [s.name for s in gated.steps]
    assert names[:2] == ["approval-a", "announce-1"]
    steps = {s.name: s for s in gated.steps}
    assert steps["approval-a"].after == []
    assert steps["announce-1"].after == ["approval-a"]
    assert steps["announce"].after == ["announce-1"]
    assert steps["drain"].after is None
    assert steps["side"].after == ["announce-1"]
    assert with_gates(spec, []) is spec


def test_a_rejected_gate_omits_the_whole_flow(core_driver: Any) -> None:
    spec = FlowSpec.model_validate(
        {"steps": [{"name": "drain", "action": "t"}, {"name": "side", "action": "t", "after": []}]}
    )
    gated = with_gates(spec, [_gate("approval-p")])
    driver = core_driver.for_flows({"gated@1": gated}, requested_by="alice")
    driver.start()
    assert driver.running == set() or not driver.running
    driver.apply(ev.Decide(now=3, actor="bob", path="approval-p", approved=False, proven=True))
    assert driver.status.phase == "Failed"
    assert {driver.status.nodes[s].phase for s in ("drain", "side")} == {"Omitted"}

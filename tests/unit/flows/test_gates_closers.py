"""An action gate (the opening of a change record) runs before every step of the flow,
and a closer runs in ``finally`` however the run ends: after success, after a failed
opening that omitted the whole flow, after a failed step."""

from __future__ import annotations

from typing import Any

import pytest

from milkyway.flows.gates import with_closers, with_gates
from milkyway.model.flow import FlowSpec, Step

FLOW = FlowSpec.model_validate(
    {
        "steps": [{"name": "drain", "action": "t"}, {"name": "side", "action": "t", "after": []}],
        "finally": [{"name": "cleanup", "action": "t"}],
    }
)
OPEN = Step.model_validate({"name": "change-open", "action": "t"})
CLOSE = Step.model_validate({"name": "change-close", "action": "t"})


def _wrapped() -> dict[str, FlowSpec]:
    return {"wrapped@1": with_closers(with_gates(FLOW, [OPEN]), [CLOSE])}


def test_closers_join_the_end_of_finally() -> None:
    spec = with_closers(FLOW, [CLOSE, Step.model_validate({"name": "cleanup", "action": "t"})])
    assert [s.name for s in spec.finally_] == ["cleanup", "change-close", "cleanup-1"]
    assert spec.finally_[1].after == ["cleanup"] and spec.finally_[2].after == ["change-close"]
    assert with_closers(FLOW, []) is FLOW


def test_a_gate_is_an_approval_or_an_action() -> None:
    sub = Step.model_validate({"name": "nested", "flow": "other"})
    with pytest.raises(ValueError, match="neither an approval nor an action"):
        with_gates(FLOW, [sub])


def test_the_opening_runs_first_and_the_closing_last(core_driver: Any) -> None:
    driver = core_driver.for_flows(_wrapped())
    driver.start()
    assert set(driver.running) == {"change-open"}
    driver.succeed("change-open", {"ticket": "CHG1"})
    assert set(driver.running) == {"drain", "side"}
    driver.succeed("drain")
    driver.succeed("side")
    driver.succeed("finally.cleanup")
    assert set(driver.running) == {"finally.change-close"}
    driver.succeed("finally.change-close")
    assert driver.status.phase == "Succeeded"


def test_a_failed_opening_omits_the_flow_and_still_closes(core_driver: Any) -> None:
    driver = core_driver.for_flows(_wrapped())
    driver.start()
    driver.fail("change-open", kind="Fatal")
    assert {driver.status.nodes[s].phase for s in ("drain", "side")} == {"Omitted"}
    driver.succeed("finally.cleanup")
    driver.succeed("finally.change-close")
    assert driver.status.phase == "Failed"


def test_a_failed_step_still_closes(core_driver: Any) -> None:
    driver = core_driver.for_flows(_wrapped())
    driver.start()
    driver.succeed("change-open", {"ticket": "CHG1"})
    driver.fail("drain", kind="Fatal")
    driver.run_all()
    assert driver.status.phase == "Failed"
    assert driver.status.nodes["finally.change-close"].phase == "Succeeded"

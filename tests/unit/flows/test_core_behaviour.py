"""Specific behaviours of the core: ordering, data flow, retries, groups, handlers, retry."""

from __future__ import annotations

from typing import Any

import pytest

from milkyway.flows import events as ev
from milkyway.flows.core import InvalidRequest
from milkyway.flows.engine import progress
from milkyway.model.flow import FlowSpec


def _spec(data: dict[str, Any]) -> FlowSpec:
    return FlowSpec.model_validate(data)


def test_outputs_feed_later_steps_and_flow_outputs(core_driver: Any) -> None:
    spec = _spec(
        {
            "parameters": {"size": {"type": "integer", "default": 3}},
            "steps": [
                {"name": "measure", "action": "t", "params": {"n": "${{ params.size * 2 }}"}},
                {
                    "name": "use",
                    "action": "t",
                    "params": {
                        "seen": "${{ steps.measure.outputs.value }}",
                        "text": "v=${{ 1+1 }}",
                    },
                },
            ],
            "outputs": {"total": "steps.measure.outputs.value + 1"},
        }
    )
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    assert driver.commands[-1].params == {"n": 6}
    driver.succeed("measure", {"value": 41})
    run_task = next(c for c in driver.commands if isinstance(c, ev.RunTask))
    assert run_task.params == {"seen": 41, "text": "v=2"}
    driver.succeed("use")
    assert driver.status.phase == "Succeeded"
    assert driver.status.outputs == {"total": 42}


def test_steps_run_in_order_unless_after_says_otherwise(core_driver: Any) -> None:
    spec = _spec(
        {
            "steps": [
                {"name": "a", "action": "t"},
                {"name": "b", "action": "t"},
                {"name": "c", "action": "t", "after": []},
                {"name": "d", "action": "t", "after": ["b", "c"]},
            ]
        }
    )
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    assert sorted(driver.running) == ["a", "c"]
    driver.succeed("c")
    assert sorted(driver.running) == ["a"]
    driver.succeed("a")
    assert sorted(driver.running) == ["b"]
    driver.succeed("b")
    assert sorted(driver.running) == ["d"]


def test_retries_back_off_then_fail_and_run_handlers(core_driver: Any) -> None:
    spec = _spec(
        {
            "steps": [
                {
                    "name": "flaky",
                    "action": "t",
                    "retry": {"limit": 2, "backoff": {"duration": 10, "factor": 3}},
                },
                {"name": "never", "action": "t"},
            ],
            "onFailure": [{"name": "compensate", "action": "t"}],
            "finally": [{"name": "cleanup", "action": "t"}],
        }
    )
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    driver.fail("flaky")
    assert driver.status.nodes["flaky"].phase == "Retrying"
    assert driver.wake == driver.now + 10
    driver.tick()
    driver.fail("flaky")
    assert driver.wake == driver.now + 30
    driver.tick()
    driver.fail("flaky", kind="Retryable")
    assert driver.status.nodes["flaky"].phase == "Failed"
    assert len(driver.status.nodes["flaky"].attempts) == 3
    assert list(driver.running) == ["onFailure.compensate"]
    driver.succeed("onFailure.compensate")
    driver.succeed("finally.cleanup")
    assert driver.status.phase == "Failed"
    assert driver.status.nodes["never"].phase == "Omitted"


def test_fatal_errors_are_not_retried_by_default(core_driver: Any) -> None:
    spec = _spec({"steps": [{"name": "s", "action": "t", "retry": {"limit": 5}}]})
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    driver.fail("s", kind="Fatal")
    assert driver.status.phase == "Failed"


def test_attempt_timeout_cancels_and_retries(core_driver: Any) -> None:
    spec = _spec({"steps": [{"name": "s", "action": "t", "timeout": 5, "retry": {"limit": 1}}]})
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    driver.tick()
    assert any(isinstance(c, ev.CancelTask) for c in driver.commands)
    attempts = driver.status.nodes["s"].attempts
    assert attempts[0].error == "Timeout"


def test_continue_on_error_lets_later_steps_run(core_driver: Any) -> None:
    spec = _spec(
        {
            "steps": [
                {"name": "optional", "action": "t", "continueOnError": True},
                {"name": "next", "action": "t"},
            ]
        }
    )
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    driver.fail("optional", kind="Fatal")
    driver.succeed("next")
    assert driver.status.phase == "Succeeded"
    assert driver.status.nodes["optional"].phase == "Failed"


def test_group_by_zone_with_canary_pause_and_gate(core_driver: Any) -> None:
    members = [{"name": f"m{i}", "zone": "ab"[i % 2]} for i in range(5)]
    spec = _spec(
        {
            "steps": [
                {
                    "name": "roll",
                    "forEach": members,
                    "action": "t",
                    "params": {"member": "${{ item.name }}"},
                    "strategy": {
                        "parallelism": 2,
                        "batches": {"by": "item.zone"},
                        "canary": 1,
                        "pause": 30,
                        "healthGate": {"action": "check"},
                    },
                }
            ]
        }
    )
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    assert driver.status.nodes["roll"].batches == [[0], [2, 4], [1, 3]]
    assert list(driver.running) == ["roll[0]"]
    driver.succeed("roll[0]")
    assert not driver.running
    assert driver.wake == driver.now + 30
    driver.tick()
    assert list(driver.running) == ["roll.gate[0]"]
    driver.succeed("roll.gate[0]")
    assert sorted(driver.running) == ["roll[2]", "roll[4]"]
    driver.succeed("roll[2]")
    assert sorted(driver.running) == ["roll[4]"]
    driver.run_all()
    assert driver.status.phase == "Succeeded"


def test_disruption_budget_counts_failed_members_as_down(core_driver: Any) -> None:
    spec = _spec(
        {
            "steps": [
                {
                    "name": "roll",
                    "forEach": [1, 2, 3, 4],
                    "action": "t",
                    "strategy": {
                        "parallelism": 3,
                        "failureBudget": 2,
                        "disruptionBudget": {"maxUnavailable": 2},
                    },
                }
            ]
        }
    )
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    assert sorted(driver.running) == ["roll[0]", "roll[1]"]
    driver.fail("roll[0]", kind="Fatal")
    assert sorted(driver.running) == ["roll[1]"]
    driver.succeed("roll[1]")
    assert sorted(driver.running) == ["roll[2]"]
    driver.fail("roll[2]", kind="Fatal")
    group = driver.status.nodes["roll"]
    assert group.phase == "Failed"
    assert "disruption budget exhausted" in group.message
    assert driver.status.nodes["roll[3]"].phase == "Omitted"


def test_cancel_stops_work_but_runs_finally(core_driver: Any) -> None:
    spec = _spec(
        {
            "steps": [{"name": "long", "action": "t"}, {"name": "after", "action": "t"}],
            "finally": [{"name": "cleanup", "action": "t"}],
        }
    )
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    driver.apply(ev.Cancel(now=1, actor="carol", reason="maintenance window over"))
    assert ev.CancelTask("long", 1) in driver.commands
    assert list(driver.running) == ["finally.cleanup"]
    driver.succeed("finally.cleanup")
    assert driver.status.phase == "Cancelled"
    assert driver.status.nodes["after"].phase == "Omitted"
    with pytest.raises(InvalidRequest):
        driver.apply(ev.Cancel(now=5))


def test_retry_resumes_from_the_failed_step(core_driver: Any) -> None:
    spec = _spec(
        {
            "steps": [
                {"name": "a", "action": "t"},
                {"name": "fan", "forEach": [0, 1, 2], "action": "t"},
                {"name": "z", "action": "t"},
            ]
        }
    )
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    driver.succeed("a")
    driver.succeed("fan[0]")
    driver.fail("fan[1]", kind="Fatal")
    assert driver.status.phase == "Failed"
    driver.apply(ev.Retry(now=driver.now + 1, actor="bob"))
    assert driver.status.phase == "Running"
    assert list(driver.running) == ["fan[1]"]
    driver.run_all()
    assert driver.status.phase == "Succeeded"
    assert len(driver.status.nodes["a"].attempts) == 1
    assert len(driver.status.nodes["fan[0]"].attempts) == 1
    assert len(driver.status.nodes["fan[1]"].attempts) == 2


def test_pause_holds_new_work_until_resume(core_driver: Any) -> None:
    spec = _spec({"steps": [{"name": "a", "action": "t"}, {"name": "b", "action": "t"}]})
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    driver.apply(ev.Pause(now=0))
    driver.succeed("a")
    assert driver.status.phase == "Paused"
    assert not driver.running
    driver.apply(ev.Resume(now=driver.now))
    assert list(driver.running) == ["b"]


def test_recover_runs_interrupted_attempts_again(core_driver: Any) -> None:
    spec = _spec({"steps": [{"name": "a", "action": "t", "retry": {"limit": 0}}]})
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    driver.crash()
    assert list(driver.running) == ["a"]
    driver.succeed("a")
    phases = [a.phase for a in driver.status.nodes["a"].attempts]
    assert phases == ["Interrupted", "Succeeded"]
    assert driver.status.phase == "Succeeded"


def test_bad_expression_fails_the_step_with_its_text(core_driver: Any) -> None:
    spec = _spec({"steps": [{"name": "a", "action": "t", "params": {"x": "${{ params.nope }}"}}]})
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    node = driver.status.nodes["a"]
    assert node.phase == "Failed"
    assert "params.nope" in node.message


def test_transitions_never_modify_the_given_status(core_driver: Any) -> None:
    spec = _spec({"steps": [{"name": "a", "action": "t"}]})
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    before = driver.status
    dumped = before.model_dump()
    driver.succeed("a")
    assert before.model_dump() == dumped
    assert driver.status is not before


def test_members_failing_at_start_count_against_the_failure_budget(core_driver: Any) -> None:
    spec = _spec(
        {
            "steps": [
                {
                    "name": "fan",
                    "forEach": [{"ok": 1}, {}, {}],
                    "action": "t",
                    "params": {"v": "${{ item.ok }}"},
                    "strategy": {"parallelism": 3},
                }
            ]
        }
    )
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    assert list(driver.running) == ["fan[0]"]
    assert driver.status.nodes["fan[1]"].phase == "Failed"
    assert driver.status.nodes["fan[2]"].phase == "Pending"
    driver.succeed("fan[0]")
    group = driver.status.nodes["fan"]
    assert group.phase == "Failed"
    assert driver.status.nodes["fan[2]"].phase == "Omitted"
    assert "failure budget exceeded" in group.message


def test_text_with_several_expressions_is_interpolated(core_driver: Any) -> None:
    spec = _spec(
        {"steps": [{"name": "a", "action": "t", "params": {"k": "${{ run.id }}.m${{ 1 + 1 }}"}}]}
    )
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    assert driver.commands[-1].params == {"k": "run-1.m2"}


def test_heartbeat_timeout_fails_a_silent_attempt(core_driver: Any) -> None:
    spec = _spec({"steps": [{"name": "long", "action": "t", "heartbeatTimeout": 10}]})
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    driver.now = 8
    driver.apply(ev.Heartbeat(now=8, path="long", attempt=1, message="50%"))
    assert driver.status.nodes["long"].message == "50%"
    assert driver.wake == 18
    driver.tick()
    node = driver.status.nodes["long"]
    assert node.phase == "Failed"
    assert node.attempts[0].error == "Timeout"
    assert ev.CancelTask("long", 1) in driver.commands


def test_step_timeout_cancels_the_members_of_a_group(core_driver: Any) -> None:
    spec = _spec(
        {
            "steps": [
                {
                    "name": "fan",
                    "forEach": [1, 2, 3],
                    "action": "t",
                    "stepTimeout": 30,
                    "strategy": {"parallelism": 2},
                }
            ]
        }
    )
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    assert sorted(driver.running) == ["fan[0]", "fan[1]"]
    driver.tick()
    assert not driver.running
    assert driver.status.nodes["fan"].phase == "Failed"
    assert driver.status.nodes["fan"].message == "step timed out"
    assert driver.status.nodes["fan[2]"].phase == "Cancelled"
    assert driver.status.phase == "Failed"


def test_run_timeout_stops_the_run_but_runs_finally(core_driver: Any) -> None:
    spec = _spec(
        {
            "timeout": 100,
            "steps": [{"name": "slow", "action": "t"}],
            "finally": [{"name": "cleanup", "action": "t"}],
        }
    )
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    driver.tick()
    assert list(driver.running) == ["finally.cleanup"]
    driver.succeed("finally.cleanup")
    assert driver.status.phase == "Failed"
    assert driver.status.nodes[""].message == "run timed out"


def test_retry_passes_the_health_gate_again_and_resumes_member_subflows(
    core_driver: Any,
) -> None:
    sub = _spec({"steps": [{"name": "stop", "action": "t"}, {"name": "start", "action": "t"}]})
    spec = _spec(
        {
            "steps": [
                {
                    "name": "roll",
                    "forEach": ["a", "b"],
                    "flow": "sub",
                    "strategy": {"batches": {"size": 1}, "healthGate": {"action": "check"}},
                }
            ]
        }
    )
    driver = core_driver.for_flows({"f@1": spec, "sub@1": sub})
    driver.start()
    driver.succeed("roll[0]/stop")
    driver.succeed("roll[0]/start")
    driver.succeed("roll.gate[0]")
    driver.succeed("roll[1]/stop")
    driver.fail("roll[1]/start", kind="Fatal")
    assert driver.status.phase == "Failed"
    driver.apply(ev.Retry(now=driver.now + 1, actor="bob"))
    assert list(driver.running) == ["roll.gate[0]"]
    driver.succeed("roll.gate[0]")
    assert list(driver.running) == ["roll[1]/start"]
    driver.succeed("roll[1]/start")
    assert driver.status.phase == "Succeeded"
    runs = [path for _, path, _ in driver.started]
    assert runs.count("roll[1]/stop") == 1 and runs.count("roll[0]/stop") == 1
    assert runs.count("roll[1]/start") == 2, "only the failed step ran again"
    assert len(driver.status.nodes["roll[1]/start"].attempts) == 2, "its failure is kept"
    assert "roll[1]/stop" not in driver.status.nodes, "a first-time success is forgotten"


def test_succeeded_steps_forget_their_params_and_first_time_successes(core_driver: Any) -> None:
    sub = _spec(
        {
            "parameters": {"who": {"type": "string"}},
            "steps": [
                {"name": "stop", "action": "t", "params": {"who": "${{ params.who }}"}},
                {"name": "start", "action": "t", "retry": {"limit": 2}},
            ],
        }
    )
    spec = _spec(
        {
            "steps": [
                {
                    "name": "roll",
                    "forEach": ["a", "b"],
                    "flow": "sub",
                    "params": {"who": "${{ item }}"},
                }
            ]
        }
    )
    driver = core_driver.for_flows({"f@1": spec, "sub@1": sub})
    driver.start()
    assert driver.status.nodes["roll[0]"].item == "a"
    driver.succeed("roll[0]/stop")
    driver.succeed("roll[0]/start")
    driver.succeed("roll[1]/stop")
    driver.fail("roll[1]/start")
    driver.tick()
    driver.succeed("roll[1]/start")

    assert driver.status.phase == "Succeeded"
    nodes = driver.status.nodes
    for member in ("roll[0]", "roll[1]"):
        assert nodes[member].params is None and nodes[member].item is None
        assert nodes[member].index is not None
    assert sorted(p for p in nodes if p.startswith("roll[")) == [
        "roll[0]",
        "roll[1]",
        "roll[1]/start",
    ], "only the step that failed once is kept below the members"
    assert len(nodes["roll[1]/start"].attempts) == 2
    assert nodes[""].params is None and driver.status.params == {}
    assert progress(driver.status) == "4/4", "forgotten steps still count as done"


def test_a_run_whose_root_node_carries_the_params_continues(core_driver: Any) -> None:
    """Engines before the params were kept once wrote them into the root node as well
    (with defaults) and ``status.params`` as given; such a run resumes reading the root's."""
    spec = _spec(
        {
            "parameters": {"size": {"type": "integer", "default": 3}},
            "steps": [
                {"name": "first", "action": "t"},
                {"name": "second", "action": "t", "params": {"n": "${{ params.size * 2 }}"}},
            ],
        }
    )
    driver = core_driver.for_flows({"f@1": spec})
    driver.start()
    assert driver.status.nodes[""].params is None and driver.status.params == {"size": 3}
    root = driver.status.nodes[""].model_copy(update={"params": {"size": 5}})
    driver.status = driver.status.model_copy(
        update={"params": {}, "nodes": {**driver.status.nodes, "": root}}
    )

    driver.succeed("first")

    assert [p for _, p, _ in driver.started] == ["first", "second"]
    assert driver.commands[0].params == {"n": 10}

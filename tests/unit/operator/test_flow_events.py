"""Which notification events a FlowRun shows, and that each has one identity."""

from __future__ import annotations

from typing import Any

from milkyway.operator.flow_events import RECENT, flow_events


def run(phase: str, nodes: dict[str, Any], finished: float | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "r1", "namespace": "ns"},
        "spec": {"flow": "f"},
        "status": {"phase": phase, "nodes": nodes, "finishedAt": finished},
    }


def test_a_failed_attempt_is_a_task_failure_with_one_key_across_retries() -> None:
    first = flow_events(
        run("Running", {"a": {"kind": "task", "name": "a", "failures": 1, "message": "m"}}),
        "app",
        first_seen=False,
    )
    again = flow_events(
        run("Running", {"a": {"kind": "task", "name": "a", "failures": 2, "message": "m"}}),
        "app",
        first_seen=False,
    )
    assert [e.trigger for e in first] == ["task-failed"]
    assert first[0].vars["attempt"] == 1 and again[0].vars["attempt"] == 2
    assert first[0].key == again[0].key == "ns/app/task-failed/r1/a"


def test_a_finished_run_is_told_and_an_old_one_first_seen_is_not() -> None:
    failed = run("Failed", {"a": {"kind": "task", "phase": "Failed", "message": "boom"}}, 1000.0)
    triggers = [e.trigger for e in flow_events(failed, "app", first_seen=False, now=1001.0)]
    assert triggers == ["task-failed", "flow-failed"]
    assert flow_events(failed, "app", first_seen=True, now=1000.0 + RECENT + 1) == []
    assert flow_events(failed, "app", first_seen=True, now=1001.0)
    done = flow_events(run("Succeeded", {}, 1000.0), "app", first_seen=False)
    assert [e.trigger for e in done] == ["flow-succeeded"]


def test_approvals_are_told_when_requested_and_when_decided() -> None:
    waiting = flow_events(
        run("Running", {"ok": {"kind": "approval", "name": "ok", "phase": "Waiting"}}),
        "app",
        first_seen=False,
    )
    assert [e.trigger for e in waiting] == ["approval-requested"]
    decided = flow_events(
        run(
            "Running",
            {
                "ok": {
                    "kind": "approval",
                    "name": "ok",
                    "phase": "Succeeded",
                    "decision": {"approved": True, "by": "alice", "reason": "go"},
                }
            },
        ),
        "app",
        first_seen=False,
    )
    assert decided[0].trigger == "approval-decided"
    assert decided[0].vars["decision"] == "approved" and decided[0].vars["by"] == "alice"

"""The pure parts of change records: the outcome a closing reports, the Application's
ChangeRecord condition at each stage, and the signature the ITSM system checks."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from milkyway.operator.change_records import outcome, record_condition, signature, steps


def _run(open_phase: str, close_phase: str | None = None, message: str = "") -> dict[str, Any]:
    nodes: dict[str, Any] = {"change-open": {"phase": open_phase, "message": message}}
    if close_phase:
        nodes["finally.change-close"] = {"phase": close_phase}
    return {
        "metadata": {"name": "run-1", "creationTimestamp": "2026-12-07T10:00:00Z"},
        "status": {"nodes": nodes},
    }


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        (
            {"change-open": "Succeeded", "apply": "Succeeded", "change-close": "Running"},
            "succeeded",
        ),
        ({"change-open": "Succeeded", "apply": "Failed", "verify": "Omitted"}, "failed"),
        ({"change-open": "Succeeded", "apply": "Cancelled"}, "cancelled"),
    ],
)
def test_the_outcome_of_a_run(phases: dict[str, str], expected: str) -> None:
    assert outcome({k: {"phase": v} for k, v in phases.items()}) == expected


@pytest.mark.parametrize(
    ("runs", "tickets", "status", "reason", "text"),
    [
        ([], {}, "False", "NoRecord", ""),
        ([_run("Running")], {}, "False", "Opening", "run-1: opening"),
        (
            [_run("Failed", message="Retryable: the change record could not be opened: x")],
            {},
            "False",
            "OpenFailed",
            "could not be opened: x; no step of the flow ran",
        ),
        ([_run("Succeeded")], {"ticket": "CHG7"}, "True", "Open", "CHG7 open for run-1"),
        (
            [_run("Succeeded", "Succeeded")],
            {"ticket": "CHG7", "outcome": "failed"},
            "False",
            "Closed",
            "CHG7 of run-1 closed: failed",
        ),
        ([_run("Succeeded", "Failed")], {"ticket": "CHG7"}, "True", "CloseFailed", "CHG7"),
        (
            [_run("Succeeded")],
            {"ticket": "", "warning": "no change record: down"},
            "False",
            "NoTicket",
            "no change record: down",
        ),
    ],
)
def test_the_change_record_condition(
    runs: list[dict[str, Any]], tickets: dict[str, Any], status: str, reason: str, text: str
) -> None:
    found = record_condition(runs, 1, tickets=tickets)
    assert (found["type"], found["status"], found["reason"]) == ("ChangeRecord", status, reason)
    assert text in found["message"]


def test_the_signature_is_an_hmac_of_the_body() -> None:
    body = b'{"event":"open"}'
    assert (
        signature(b"k" * 16, body)
        == "sha256=" + hmac.new(b"k" * 16, body, hashlib.sha256).hexdigest()
    )


def test_the_steps_open_after_the_gates_and_close_in_finally() -> None:
    opening, closing = steps(
        namespace="ns",
        application="app",
        flow="milkyway-provision",
        operation="provision",
        component=None,
    )
    assert opening.action == "milkyway.change-open" and opening.params["component"] == ""
    assert closing.action == "milkyway.change-close" and closing.params["steps"] == "${{ steps }}"

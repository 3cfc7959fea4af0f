"""Finished flow runs are counted by flow and phase, timed from the FlowRun's creation
(which survives a restart of the operator mid-flow)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from milkyway.flows.metrics import observe_finished
from milkyway.telemetry import REGISTRY


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_counted_by_phase_and_timed_from_creation() -> None:
    flow = "example-flow-metrics"
    created = (datetime.now(UTC) - timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    observe_finished(flow, "Succeeded", created)
    observe_finished(flow, "Failed", None)
    assert _value("milkyway_flows_finished_total", flow=flow, phase="Succeeded") == 1
    assert _value("milkyway_flows_finished_total", flow=flow, phase="Failed") == 1
    assert _value("milkyway_flow_seconds_count", flow=flow) == 1
    assert 89 <= _value("milkyway_flow_seconds_sum", flow=flow) < 120


def test_an_unreadable_creation_time_is_not_timed() -> None:
    observe_finished("example-flow-bad-time", "Succeeded", "yesterday")
    assert _value("milkyway_flow_seconds_count", flow="example-flow-bad-time") == 0
    assert (
        _value("milkyway_flows_finished_total", flow="example-flow-bad-time", phase="Succeeded")
        == 1
    )

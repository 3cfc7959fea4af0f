"""Prometheus metrics of the flow engine: flows and tasks by outcome and duration."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram

from milkyway.telemetry import REGISTRY

FLOWS_FINISHED = Counter(
    "milkyway_flows_finished",
    "Flow runs that finished in this engine, by flow and phase (Succeeded, Failed, ...).",
    ["flow", "phase"],
    registry=REGISTRY,
)
FLOW_SECONDS = Histogram(
    "milkyway_flow_seconds",
    "Duration of finished flow runs, from creation to the end, by flow.",
    ["flow"],
    registry=REGISTRY,
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
FLOWS_RUNNING = Gauge(
    "milkyway_flows_running",
    "Flow runs this engine is driving now.",
    registry=REGISTRY,
)
TASKS = Counter(
    "milkyway_tasks",
    "Task attempts, by task action and outcome (succeeded, failed).",
    ["action", "outcome"],
    registry=REGISTRY,
)
TASK_SECONDS = Histogram(
    "milkyway_task_seconds",
    "Duration of one task attempt, by task action.",
    ["action"],
    registry=REGISTRY,
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
)


def observe_finished(flow: str, phase: str, created: str | None) -> None:
    """Count a run that finished in ``phase``; its duration runs from ``created`` (the
    FlowRun's RFC 3339 creation time), which survives an operator restart mid-flow."""
    FLOWS_FINISHED.labels(flow, phase).inc()
    if created:
        try:
            started = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            return
        FLOW_SECONDS.labels(flow).observe(max(0.0, (datetime.now(UTC) - started).total_seconds()))

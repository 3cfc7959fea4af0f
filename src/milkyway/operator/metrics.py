"""The operator's Prometheus metrics (served with the rest of
``milkyway.telemetry.REGISTRY`` on ``--metrics-port``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from milkyway.telemetry import REGISTRY

RECONCILES = Counter(
    "milkyway_reconciles",
    "Reconciles of Applications, by result (success, conflict, error).",
    ["result"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "milkyway_reconcile_seconds",
    "Wall time of one reconcile of one Application.",
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge(
    "milkyway_workqueue_depth",
    "Applications waiting in the work queue to be reconciled.",
    registry=REGISTRY,
)
QUEUE_LATENCY = Histogram(
    "milkyway_workqueue_latency_seconds",
    "Time an Application waited in the work queue before a worker took it.",
    registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60),
)
LEADER = Gauge(
    "milkyway_operator_leader",
    "1 while this replica holds the leader Lease and works, else 0.",
    registry=REGISTRY,
)
CLUSTER_REACHABLE = Gauge(
    "milkyway_cluster_reachable",
    "1 when the member cluster answered its last heartbeat, else 0.",
    ["cluster"],
    registry=REGISTRY,
)
GC_PAUSES = Histogram(
    "milkyway_gc_pause_seconds",
    "Pauses of the operator's event loop by the cyclic garbage collector, by generation.",
    ["generation"],
    registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def observe_gc_pause(generation: int, seconds: float) -> None:
    GC_PAUSES.labels(str(generation)).observe(seconds)

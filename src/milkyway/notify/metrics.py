"""Prometheus metrics of notifications and health checks, in one registry the operator
serves (``milkyway.telemetry.REGISTRY``, also ``milkyway.notify.metrics.REGISTRY``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from milkyway.telemetry import REGISTRY

DELIVERIES = Counter(
    "milkyway_notification_deliveries",
    "Notification send attempts by trigger, service and outcome (sent, retry, failed).",
    ["trigger", "service", "outcome"],
    registry=REGISTRY,
)
EVENTS = Counter(
    "milkyway_notification_events",
    "Events that found at least one subscription, by trigger.",
    ["trigger"],
    registry=REGISTRY,
)
CONFIG_PROBLEMS = Gauge(
    "milkyway_notification_config_problems",
    "Unusable entries in the notifications ConfigMap at its last read.",
    registry=REGISTRY,
)
HEALTH_CHECKS = Counter(
    "milkyway_health_checks",
    "Health reports written, by resulting status.",
    ["status"],
    registry=REGISTRY,
)
HEALTH_STATUS = Gauge(
    "milkyway_application_health",
    "Last health of each Application: 0 Healthy, 1 Unknown, 2 Degraded, 3 Unhealthy.",
    ["namespace", "application"],
    registry=REGISTRY,
)
HEALTH_FINDINGS = Gauge(
    "milkyway_application_health_findings",
    "Findings in each Application's last health report.",
    ["namespace", "application"],
    registry=REGISTRY,
)
HEALTH_SECONDS = Histogram(
    "milkyway_health_check_seconds",
    "Wall time of one health check of one Application.",
    registry=REGISTRY,
)

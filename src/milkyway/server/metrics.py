"""The server's Prometheus metrics: every HTTP request, by route, method and status."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from milkyway.telemetry import REGISTRY

REQUESTS = Counter(
    "milkyway_server_requests",
    "HTTP requests answered, by route name, method and status code.",
    ["route", "method", "code"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "milkyway_server_request_seconds",
    "Time to answer one HTTP request, by route name.",
    ["route"],
    registry=REGISTRY,
)


def observe_request(method: str, route: str, code: int, seconds: float) -> None:
    REQUESTS.labels(route, method, str(code)).inc()
    REQUEST_SECONDS.labels(route).observe(seconds)

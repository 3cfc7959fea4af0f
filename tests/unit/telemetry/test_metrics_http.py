"""The /metrics endpoint serves the process registry in a form Prometheus's parser reads,
and /healthz reflects the process's own verdict."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from milkyway.flows import metrics as flow_metrics  # noqa: F401  (registers)
from milkyway.notify import metrics as notify_metrics
from milkyway.operator import metrics as operator_metrics
from milkyway.telemetry import REGISTRY
from milkyway.telemetry.http import MetricsServer


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_parse_and_count() -> None:
    registry = CollectorRegistry()
    counter = Counter("example_things", "Things.", ["kind"], registry=registry)
    counter.labels("a").inc(3)
    server = MetricsServer("127.0.0.1", 0, registry).start()
    try:
        code, text = _get(server.port, "/metrics")
        assert code == 200
        families = {f.name: f for f in text_string_to_metric_families(text)}
        sample = families["example_things"].samples[0]
        assert sample.labels == {"kind": "a"} and sample.value == 3.0
        assert _get(server.port, "/nothing")[0] == 404
    finally:
        server.close()


def test_healthz_follows_the_verdict() -> None:
    healthy = [True]
    server = MetricsServer("127.0.0.1", 0, CollectorRegistry(), lambda: healthy[0]).start()
    try:
        assert _get(server.port, "/healthz")[0] == 200
        healthy[0] = False
        assert _get(server.port, "/healthz")[0] == 503
    finally:
        server.close()


def test_the_process_registry_holds_operator_and_health_metrics() -> None:
    operator_metrics.RECONCILES.labels("success").inc()
    server = MetricsServer("127.0.0.1", 0).start()
    try:
        names = {f.name for f in text_string_to_metric_families(_get(server.port, "/metrics")[1])}
    finally:
        server.close()
    assert {
        "milkyway_reconciles",
        "milkyway_reconcile_seconds",
        "milkyway_workqueue_depth",
        "milkyway_workqueue_latency_seconds",
        "milkyway_operator_leader",
        "milkyway_health_checks",
        "milkyway_flows_running",
    } <= names
    assert notify_metrics.REGISTRY is REGISTRY


@pytest.mark.parametrize("fmt", ["yaml", ""])
def test_unknown_log_format_is_refused(fmt: str) -> None:
    from milkyway.telemetry.logs import configure_logging

    with pytest.raises(ValueError, match="--log-format"):
        configure_logging(fmt)

"""The agent's Prometheus metrics: its own (requests, checks, restarts seen), the volumes,
and the data system's numbers the checks read (ZooKeeper ``mntr`` as gauges)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_METRIC_NAME = re.compile(r"[^a-zA-Z0-9_]")


class DataSystemCollector(Collector):
    """Exports the last numeric values a typed check read, e.g. ``mntr``'s
    ``zk_avg_latency`` as ``milkyway_zk_avg_latency``, and the server state as a label."""

    def __init__(self, observed: Callable[[], Mapping[str, Mapping[str, Any]]]) -> None:
        self._observed = observed

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for check, values in sorted(self._observed().items()):
            mntr = values.get("mntr")
            if isinstance(mntr, Mapping):
                for key, raw in sorted(mntr.items()):
                    try:
                        number = float(raw)
                    except (TypeError, ValueError):
                        continue
                    name = "milkyway_" + _METRIC_NAME.sub("_", key)
                    family = GaugeMetricFamily(name, f"ZooKeeper mntr {key}", labels=["check"])
                    family.add_metric([check], number)
                    yield family
            mode = values.get("mode")
            if isinstance(mode, str) and mode:
                family = GaugeMetricFamily(
                    "milkyway_data_system_mode",
                    "Role of the member (1 for its mode)",
                    labels=["check", "mode"],
                )
                family.add_metric([check, mode], 1.0)
                yield family


class AgentMetrics:
    def __init__(self, observed: Callable[[], Mapping[str, Mapping[str, Any]]]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "milkyway_agent_requests", "HTTP requests served", ["route", "code"], registry=r
        )
        self.request_seconds = Histogram(
            "milkyway_agent_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            registry=r,
        )
        self.check_up = Gauge(
            "milkyway_agent_check_up", "1 if the check passed", ["check"], registry=r
        )
        self.check_seconds = Histogram(
            "milkyway_agent_check_duration_seconds", "Check duration", ["check"], registry=r
        )
        self.restarts = Counter(
            "milkyway_agent_data_system_restarts",
            "Times the data system came back after its critical checks failed",
            registry=r,
        )
        self.volume_used = Gauge(
            "milkyway_agent_volume_used_bytes", "Used bytes", ["volume"], registry=r
        )
        self.volume_size = Gauge(
            "milkyway_agent_volume_size_bytes", "Size in bytes", ["volume"], registry=r
        )
        self.volume_healthy = Gauge(
            "milkyway_agent_volume_healthy",
            "0 when missing, read-only or failing I/O",
            ["volume"],
            registry=r,
        )
        self.volume_level = Gauge(
            "milkyway_agent_volume_alert_level",
            "0 ok, 1 warning, 2 critical, 3 failed",
            ["volume"],
            registry=r,
        )
        self.actions = Counter(
            "milkyway_agent_actions",
            "Action requests by decision",
            ["action", "decision"],
            registry=r,
        )
        r.register(DataSystemCollector(observed))

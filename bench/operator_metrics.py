"""The operator's own account of a time window, from its Prometheus endpoint: how long its
event loop lagged, how long the garbage collector paused it, how many Kubernetes API
requests it made and how long they took. Scraped before and after a measured reaction,
the difference explains an outlier (see docs/operator.md, "Explaining a slow reaction").
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx2
from prometheus_client.parser import text_string_to_metric_families

HISTOGRAMS = {
    "lag": "milkyway_event_loop_lag_seconds",
    "gc": "milkyway_gc_pause_seconds",
    "api": "milkyway_kube_api_request_seconds",
}
METRICS_ARGS = ("--metrics-port=0", "--metrics-host=127.0.0.1")
"""Arguments of ``milkyway operator run`` serving the endpoint on a free local port."""
_PORT = re.compile(rb"metrics on http://[^:]+:(\d+)/metrics")


@dataclass(frozen=True)
class Histogram:
    """One histogram summed over its labels: total seconds, count, count per bound."""

    seconds: float
    count: float
    buckets: tuple[tuple[float, float], ...]

    def __sub__(self, other: Histogram) -> Histogram:
        before = dict(other.buckets)
        return Histogram(
            self.seconds - other.seconds,
            self.count - other.count,
            tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets),
        )

    def worst(self) -> float:
        """The smallest bucket bound every observation is under (0: none observed)."""
        if self.count <= 0:
            return 0.0
        for le, n in self.buckets:
            if n >= self.count:
                return le
        return float("inf")


Snapshot = dict[str, Histogram]


def _logged_port(log: Path) -> int | None:
    found = _PORT.search(log.read_bytes()) if log.exists() else None
    return int(found.group(1)) if found else None


async def metrics_url(log: Path, within: float = 60.0) -> str:
    """The operator's metrics URL, from the line its log starts with."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        port = _logged_port(log)
        if port is not None:
            return f"http://127.0.0.1:{port}/metrics"
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the operator logged no metrics port within {within:.0f}s: {log}")


def parse(text: str) -> Snapshot:
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, float] = defaultdict(float)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    names = {v: k for k, v in HISTOGRAMS.items()}
    for family in text_string_to_metric_families(text):
        key = names.get(family.name)
        if key is None:
            continue
        for sample in family.samples:
            if sample.name.endswith("_sum"):
                sums[key] += sample.value
            elif sample.name.endswith("_count"):
                counts[key] += sample.value
            elif sample.name.endswith("_bucket"):
                buckets[key][float(sample.labels["le"])] += sample.value
    return {
        key: Histogram(sums[key], counts[key], tuple(sorted(buckets[key].items())))
        for key in HISTOGRAMS
    }


class OperatorMetrics:
    """Scrapes the operator's endpoint (a connection per scrape: the endpoint closes each)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http = httpx2.AsyncClient(
            timeout=10.0, trust_env=False, headers={"Connection": "close"}
        )

    async def scrape(self) -> Snapshot:
        response = await self._http.get(self.url)
        response.raise_for_status()
        return parse(response.text)

    async def close(self) -> None:
        await self._http.aclose()


def explain(before: Snapshot, after: Snapshot) -> str:
    """The operator's loop lag, GC pauses and API requests between two scrapes."""
    lag, gc, api = (after[k] - before[k] for k in ("lag", "gc", "api"))
    return (
        f"operator loop lag {lag.seconds * 1000:.0f} ms (worst <= {lag.worst() * 1000:.0f}), "
        f"GC {gc.seconds * 1000:.0f} ms in {gc.count:.0f} pauses "
        f"(worst <= {gc.worst() * 1000:.0f}), "
        f"API {api.count:.0f} requests {api.seconds * 1000:.0f} ms "
        f"(slowest <= {api.worst() * 1000:.0f})"
    )

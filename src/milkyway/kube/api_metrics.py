"""Counts every request a Milkyway client sends to a Kubernetes API server, by cluster
(the kubeconfig context the client was built for) and HTTP status code, so a cluster
that starts refusing (403, 429, 5xx) shows up on a dashboard before it shows up in a
flow; and times each one (until its response's headers arrive), so a slow reaction can be
told apart into waiting on an API server and work of the process itself. Watches are
counted but not timed: their response is the stream, which lasts by design."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram

from milkyway.telemetry import REGISTRY

API_REQUESTS = Counter(
    "milkyway_kube_api_requests",
    "Requests to Kubernetes API servers, by cluster (kubeconfig context), verb and code.",
    ["cluster", "method", "code"],
    registry=REGISTRY,
)
API_SECONDS = Histogram(
    "milkyway_kube_api_request_seconds",
    "Time from sending a request to a Kubernetes API server to its response's headers, "
    "by cluster (kubeconfig context) and verb; watches are not timed.",
    ["cluster", "method"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SENT_AT = "milkyway.sent_at"
"""Where the request hook leaves the time a request was sent (``request.extensions``)."""


def _is_watch(request: Any) -> bool:
    return request.url.params.get("watch") in ("true", "1")


def count_requests(client: Any, cluster: str) -> None:
    """Count the responses of lightkube ``client`` under ``cluster``.

    lightkube keeps its httpx client private; its response hooks are the one place every
    request passes (lists, watches, writes), so the hook is added there.
    """
    http = getattr(getattr(client, "_client", None), "_client", None)
    hooks = getattr(http, "event_hooks", None)
    if hooks is None:
        return

    async def on_request(request: Any) -> None:
        request.extensions[SENT_AT] = time.perf_counter()

    async def on_response(response: Any) -> None:
        request = response.request
        API_REQUESTS.labels(cluster, request.method, str(response.status_code)).inc()
        sent = request.extensions.get(SENT_AT)
        if sent is not None and not _is_watch(request):
            API_SECONDS.labels(cluster, request.method).observe(time.perf_counter() - sent)

    hooks["request"] = [*hooks.get("request", []), on_request]
    hooks["response"] = [*hooks.get("response", []), on_response]
    http.event_hooks = hooks

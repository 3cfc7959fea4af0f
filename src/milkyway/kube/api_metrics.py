"""Counts every request a Milkyway client sends to a Kubernetes API server, by cluster
(the kubeconfig context the client was built for) and HTTP status code, so a cluster
that starts refusing (403, 429, 5xx) shows up on a dashboard before it shows up in a
flow."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter

from milkyway.telemetry import REGISTRY

API_REQUESTS = Counter(
    "milkyway_kube_api_requests",
    "Requests to Kubernetes API servers, by cluster (kubeconfig context), verb and code.",
    ["cluster", "method", "code"],
    registry=REGISTRY,
)


def count_requests(client: Any, cluster: str) -> None:
    """Count the responses of lightkube ``client`` under ``cluster``.

    lightkube keeps its httpx client private; its response hooks are the one place every
    request passes (lists, watches, writes), so the hook is added there.
    """
    http = getattr(getattr(client, "_client", None), "_client", None)
    hooks = getattr(http, "event_hooks", None)
    if hooks is None:
        return

    async def on_response(response: Any) -> None:
        API_REQUESTS.labels(cluster, response.request.method, str(response.status_code)).inc()

    hooks["response"] = [*hooks.get("response", []), on_response]
    http.event_hooks = hooks

"""A small HTTP endpoint for ``/metrics`` (Prometheus text format) and ``/healthz``.

It runs in its own thread so a scrape is answered even while the process's event loop is
busy, and it is separate from any API port so that a NetworkPolicy can open one without
the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from milkyway.telemetry import REGISTRY


class MetricsServer:
    """Serves ``registry`` on ``host:port`` (port 0: a free one, see :attr:`port`).

    ``healthy`` answers ``/healthz``: 200 when it returns True, 503 otherwise.
    """

    def __init__(
        self,
        host: str = "0.0.0.0",
        port: int = 0,
        registry: CollectorRegistry = REGISTRY,
        healthy: Callable[[], bool] = lambda: True,
    ) -> None:
        handler = _handler(registry, healthy)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(
    registry: CollectorRegistry, healthy: Callable[[], bool]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/healthz":
                ok = healthy()
                self._reply(200 if ok else 503, "text/plain", b"ok\n" if ok else b"unhealthy\n")
            else:
                self._reply(404, "text/plain", b"not found: try /metrics or /healthz\n")

        def _reply(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes are not worth a log line each."""

    return Handler

"""A real ITSM webhook receiver for tests: an HTTP server on an ephemeral port that
checks each call's HMAC signature, keeps one ticket per ``Idempotency-Key`` (a repeated
call gets the ticket it already made), and records every call it was sent. ``failing``
makes it answer 500 to everything."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    key: bytes
    failing: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)
    """Every call: its event, idempotency key, and whether its signature held."""
    tickets: dict[str, str] = field(default_factory=dict)
    """Idempotency key of an opening to the ticket id made for it."""
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    stall_first_open: bool = False
    """Hold the answer to the first opening until :attr:`release` is set (the caller can
    be killed while its call is in flight)."""
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/changes"

    def events(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c["event"] for c in self.calls if c["event"].get("event") == kind]

    def distinct(self, kind: str) -> set[str]:
        with self.lock:
            return {c["key"] for c in self.calls if c["event"].get("event") == kind}

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = "sha256=" + hmac.new(receiver.key, body, hashlib.sha256).hexdigest()
                signed = hmac.compare_digest(expected, self.headers.get("X-Milkyway-Signature", ""))
                key = self.headers.get("Idempotency-Key", "")
                event = json.loads(body or b"{}")
                if (
                    receiver.stall_first_open
                    and event.get("event") == "open"
                    and not receiver.stalled.is_set()
                ):
                    with receiver.lock:
                        receiver.calls.append({"event": event, "key": key, "signed": signed})
                    receiver.stalled.set()
                    receiver.release.wait(120)
                    return
                with receiver.lock:
                    receiver.calls.append({"event": event, "key": key, "signed": signed})
                    if receiver.failing:
                        status, answer = 500, {"error": "ITSM is down for maintenance"}
                    elif not signed or not key:
                        status, answer = 401, {"error": "bad signature or no idempotency key"}
                    elif receiver.calls[-1]["event"].get("event") == "open":
                        ticket = receiver.tickets.setdefault(
                            key, f"CHG{len(receiver.tickets) + 1000}"
                        )
                        status, answer = 200, {"id": ticket}
                    else:
                        status, answer = 200, {"id": receiver.calls[-1]["event"].get("ticket")}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

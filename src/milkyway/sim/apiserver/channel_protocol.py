"""The Kubernetes WebSocket channel protocol (``v4.channel.k8s.io``, ``v5.channel.k8s.io``).

Every binary message starts with one byte naming its channel: 0 stdin, 1 stdout,
2 stderr, 3 error (one ``Status`` object when the command ends), 4 resize (JSON
``{"Width": w, "Height": h}``). ``v5`` adds a close signal: a message ``[255, channel]``
half-closes that channel (kubectl sends it when its stdin ends). ``v4`` clients end stdin
by closing the connection instead.
"""

from __future__ import annotations

from typing import Any

import orjson

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)

STDIN = 0
STDOUT = 1
STDERR = 2
ERROR = 3
RESIZE = 4
CLOSE = 255


def offered(header: str) -> list[str]:
    """The subprotocols a client offers in ``Sec-WebSocket-Protocol``."""
    return [p.strip() for p in header.split(",") if p.strip()]


def frame(channel: int, data: bytes) -> bytes:
    return bytes((channel,)) + data


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(command: list[str], code: int) -> dict[str, Any]:
    """The Status a kubelet sends for a command that exited with ``code`` (not 0);
    clients turn its ``ExitCode`` cause into their own exit code."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command "
            f"[{' '.join(command)}], exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def error_status(message: str, *, code: int = 500, reason: str = "InternalError") -> dict[str, Any]:
    return {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def encode_status(status: dict[str, Any]) -> bytes:
    return frame(ERROR, orjson.dumps(status))

"""What counts as "the cluster did not answer", in one place.

lightkube talks HTTP through ``httpx2`` (its own fork of httpx), so a refused connection
raises ``httpx2.ConnectError``, which is neither an ``OSError`` nor an
``httpx.TransportError``. Code that classifies failures (tasks waiting for a member
cluster, leader election, the ``/version`` probe, the CLI) asks :func:`is_transport_error`
or :func:`is_unreachable` instead of naming exception classes itself, so the three
families (the socket's ``OSError``, httpx's and httpx2's transport errors) stay together.
"""

from __future__ import annotations

import httpx
import httpx2
from lightkube import ApiError

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    httpx2.TransportError,
    httpx.TransportError,
    OSError,
)
"""Connection refused or reset, DNS failure, TLS failure, timeouts, broken streams."""

UNREACHABLE_CODES = frozenset({502, 503, 504})
"""Answers of a proxy or load balancer in front of an API server that is not there."""


def is_transport_error(exc: BaseException) -> bool:
    """The request never got an HTTP answer."""
    return isinstance(exc, TRANSPORT_ERRORS)


def is_unreachable(exc: BaseException) -> bool:
    """The API server is not there: no HTTP answer, or a gateway saying so."""
    if is_transport_error(exc):
        return True
    return isinstance(exc, ApiError) and (exc.status.code or 0) in UNREACHABLE_CODES

"""One warning per change of a cluster's reachability, whatever wraps the error."""

from __future__ import annotations

import logging

import httpx2
import pytest

from milkyway.flows.store import StoreError
from milkyway.kube.reachability import ReachabilityLog, connection_error


def _wrapped() -> StoreError:
    try:
        try:
            raise httpx2.ConnectError("All connection attempts failed")
        except httpx2.ConnectError:
            raise StoreError("list flowruns: connection failed") from None
    except StoreError as exc:
        return exc


def test_connection_errors_are_recognised_through_wrappers() -> None:
    assert connection_error(httpx2.ConnectError("refused"))
    assert connection_error(ConnectionRefusedError())
    assert connection_error(_wrapped())
    assert not connection_error(StoreError("flowrun 'x': 422 invalid"))
    assert not connection_error(ValueError("bad"))


def test_one_warning_per_change(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    reach = ReachabilityLog("mgmt")
    assert reach.failed(_wrapped(), "scanning")
    for _ in range(30):
        assert reach.failed(httpx2.ConnectError("refused"), "renewing")
    assert not reach.failed(ValueError("a bug"))
    reach.succeeded()
    reach.succeeded()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("cluster mgmt unreachable (scanning): StoreError")
    assert warnings[1] == "cluster mgmt reachable again"

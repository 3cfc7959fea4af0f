"""One definition of "the cluster did not answer", checked against what lightkube raises."""

from __future__ import annotations

import socket

import httpx
import httpx2
import pytest
from lightkube import ApiError
from lightkube.resources.core_v1 import Namespace

from milkyway.kube.clients import client_from_kubeconfig
from milkyway.kube.errors import is_transport_error, is_unreachable


def _api_error(code: int) -> ApiError:
    response = httpx.Response(
        code, json={"code": code, "message": "x"}, request=httpx.Request("GET", "http://x")
    )
    return ApiError(response=response)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_refused_connection_through_lightkube_is_unreachable() -> None:
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{_closed_port()}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    client = client_from_kubeconfig(kubeconfig, timeout=5)
    try:
        with pytest.raises(Exception) as raised:
            await client.get(Namespace, "default")
    finally:
        await client.close()
    assert is_transport_error(raised.value), type(raised.value).__mro__
    assert is_unreachable(raised.value)


@pytest.mark.parametrize(
    "exc",
    [
        httpx2.ConnectError("refused"),
        httpx2.ReadTimeout("slow"),
        httpx2.RemoteProtocolError("peer closed"),
        httpx.ConnectError("refused"),
        ConnectionResetError(),
        _api_error(502),
        _api_error(503),
        _api_error(504),
    ],
)
def test_no_answer_or_a_gateway_status_is_unreachable(exc: BaseException) -> None:
    assert is_unreachable(exc)


@pytest.mark.parametrize("exc", [_api_error(404), _api_error(500), ValueError("bad")])
def test_an_answer_is_not_unreachable(exc: BaseException) -> None:
    assert not is_unreachable(exc)
    assert not is_transport_error(exc)

"""``pods/proxy`` and ``services/proxy`` reach a real server at the pod's address."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.clusters import SimulatedClusters

from ..conftest import Kubectl

POD_IP = "127.0.0.2"


async def _echo(request: web.Request) -> web.StreamResponse:
    if request.path == "/redirect":
        raise web.HTTPFound("/landing")
    if request.path == "/stream":
        response = web.StreamResponse(headers={"X-Streamed": "yes"})
        await response.prepare(request)
        for n in range(3):
            await response.write(f"chunk{n}\n".encode())
        await response.write_eof()
        return response
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "body": body.decode(),
            "authorization": request.headers.get("Authorization"),
            "custom": request.headers.get("X-Custom"),
        }
    )


@pytest.fixture
async def pod_server() -> AsyncIterator[int]:
    """A real HTTP server on a loopback address of its own, as a pod would have."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, POD_IP, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port
    finally:
        await runner.cleanup()


def _running_pod(api: ClusterAPI, name: str, port: int, ip: str = POD_IP) -> None:
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "echo"}},
            "spec": {
                "containers": [
                    {"name": "main", "image": "echo:1", "ports": [{"containerPort": port}]}
                ]
            },
        }
    )
    api.patch(
        "pods",
        name,
        {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}},
        namespace="default",
        subresource="status",
    )


def _client(sim: SimulatedClusters, token: str | None = None) -> httpx.AsyncClient:
    assert sim.certificate is not None
    context = ssl.create_default_context(cadata=sim.certificate.ca_pem.decode())
    return httpx.AsyncClient(
        base_url=sim["c1"].url,
        headers={"Authorization": f"Bearer {token or sim.admin_token}"},
        verify=context,
        timeout=30,
    )


async def test_pod_proxy_forwards_method_path_query_body_and_streams(
    sim: SimulatedClusters, pod_server: int
) -> None:
    _running_pod(sim["c1"].api, "echo", pod_server)
    base = "/api/v1/namespaces/default/pods"
    async with _client(sim) as http:
        got = await http.post(
            f"{base}/echo:{pod_server}/proxy/some/path?a=1&b=two",
            content=b"payload",
            headers={"X-Custom": "kept"},
        )
        assert got.status_code == 200, got.text
        echoed = got.json()
        assert echoed["method"] == "POST" and echoed["path"] == "/some/path"
        assert echoed["query"] == "a=1&b=two" and echoed["body"] == "payload"
        assert echoed["custom"] == "kept"
        assert echoed["authorization"] is None, "the cluster token must not reach the pod"

        # Without a port: the first declared container port.
        assert (await http.get(f"{base}/echo/proxy/x")).json()["path"] == "/x"
        assert (await http.get(f"{base}/http:echo:{pod_server}/proxy/")).json()["path"] == "/"

        streamed = await http.get(f"{base}/echo/proxy/stream")
        assert streamed.text == "chunk0\nchunk1\nchunk2\n"
        assert streamed.headers["X-Streamed"] == "yes"

        moved = await http.get(f"{base}/echo/proxy/redirect")
        assert moved.status_code == 302
        assert moved.headers["Location"] == f"{base}/echo/proxy/landing"


async def test_https_form_reaches_a_tls_server_in_the_pod(
    sim: SimulatedClusters, tmp_path: Path
) -> None:
    """``https:name:port``: the pod serves TLS with a certificate of its own, which the
    proxy does not verify (as the real server does for pod proxying)."""
    from milkyway.sim.tls import generate

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = generate().server_context(tmp_path)
    site = web.TCPSite(runner, POD_IP, 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        _running_pod(sim["c1"].api, "secure", port)
        async with _client(sim) as http:
            base = "/api/v1/namespaces/default/pods"
            got = await http.get(f"{base}/https:secure:{port}/proxy/tls")
            assert got.status_code == 200 and got.json()["path"] == "/tls"
            plain = await http.get(f"{base}/http:secure:{port}/proxy/tls")
            assert plain.status_code in (400, 502, 503)
    finally:
        await runner.cleanup()


async def test_service_proxy_goes_to_a_ready_endpoint(
    sim: SimulatedClusters, pod_server: int
) -> None:
    api = sim["c1"].api
    _running_pod(api, "echo", pod_server)
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo", "namespace": "default"},
            "spec": {
                "selector": {"app": "echo"},
                "ports": [{"name": "web", "port": 80, "targetPort": pod_server}],
            },
        }
    )
    base = "/api/v1/namespaces/default/services"
    async with _client(sim) as http:
        none = await http.get(f"{base}/echo/proxy/")
        assert none.status_code == 503
        assert 'no endpoints available for service "echo"' in none.json()["message"]

        api.create(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": "echo", "namespace": "default"},
                "subsets": [
                    {
                        "addresses": [{"ip": POD_IP}],
                        "ports": [{"name": "web", "port": pod_server}],
                    }
                ],
            }
        )
        for path in ("echo", "echo:web", "echo:80", "http:echo:web"):
            got = await http.get(f"{base}/{path}/proxy/hello?x=1")
            assert got.status_code == 200, (path, got.text)
            assert got.json()["path"] == "/hello" and got.json()["query"] == "x=1"
        wrong = await http.get(f"{base}/echo:nope/proxy/")
        assert wrong.status_code == 503


async def test_nothing_listening_or_no_ip_is_503_status(sim: SimulatedClusters) -> None:
    api = sim["c1"].api
    with socket.socket() as probe:
        probe.bind((POD_IP, 0))
        free = probe.getsockname()[1]
    _running_pod(api, "down", free)
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "pending", "namespace": "default"},
            "spec": {"containers": [{"name": "main", "image": "echo:1"}]},
        }
    )
    async with _client(sim) as http:
        refused = await http.get("/api/v1/namespaces/default/pods/down/proxy/")
        assert refused.status_code == 503
        status = refused.json()
        assert status["kind"] == "Status" and status["reason"] == "ServiceUnavailable"
        assert "connection refused" in status["message"].lower()
        pending = await http.get("/api/v1/namespaces/default/pods/pending/proxy/")
        assert pending.status_code == 503 and "no IP address" in pending.json()["message"]
        missing = await http.get("/api/v1/namespaces/default/pods/ghost/proxy/")
        assert missing.status_code == 404
        bad = await http.get("/api/v1/namespaces/default/pods/down:http/proxy/")
        assert bad.status_code == 400


async def test_kubectl_get_raw_through_the_pod_proxy(
    kubectl: Kubectl, sim: SimulatedClusters, pod_server: int
) -> None:
    _running_pod(sim["c1"].api, "echo", pod_server)
    out = await kubectl.run(
        "get", "--raw", f"/api/v1/namespaces/default/pods/echo:{pod_server}/proxy/status?v=1"
    )
    echoed = json.loads(out.stdout)
    assert echoed["path"] == "/status" and echoed["query"] == "v=1"


async def test_proxy_is_authorized_by_method_verb(tmp_path: Path, pod_server: int) -> None:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('admin-token,admin,1,"system:masters"\nreader-token,reader,2,""\n')
    async with SimulatedClusters(
        ["c1"], kubeconfig_path=tmp_path / "kubeconfig", token_file=tokens, rbac=True
    ) as sim:
        api = sim["c1"].api
        _running_pod(api, "echo", pod_server)
        api.create(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "proxy-get", "namespace": "default"},
                "rules": [{"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]}],
            }
        )
        api.create(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "reader", "namespace": "default"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "proxy-get",
                },
                "subjects": [{"kind": "User", "name": "reader"}],
            }
        )
        async with _client(sim, token="reader-token") as http:
            url = "/api/v1/namespaces/default/pods/echo/proxy/x"
            assert (await http.get(url)).status_code == 200
            refused = await http.post(url, content=b"x")
            assert refused.status_code == 403
            assert 'cannot create resource "pods/proxy"' in refused.json()["message"]
            other = await http.get("/api/v1/namespaces/default/services/echo/proxy/")
            assert other.status_code == 403
            log = await http.get("/api/v1/namespaces/default/pods/echo/log")
            assert log.status_code == 403
            assert 'cannot get resource "pods/log"' in log.json()["message"]

"""The HTTP layer itself: bad requests get the right Status and change nothing, concurrent
read-modify-write loops keep optimistic concurrency, watch streams, auth and persistence."""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from milkyway.sim.clusters import SimulatedClusters

JSON = "application/json"
CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "base"}, "data": {"n": "0"}}
CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


def _client(
    sim: SimulatedClusters, cluster: str = "c1", token: str | None = None
) -> httpx.AsyncClient:
    assert sim.certificate is not None
    context = ssl.create_default_context(cadata=sim.certificate.ca_pem.decode())
    headers = {"Authorization": f"Bearer {token or sim.admin_token}"}
    return httpx.AsyncClient(base_url=sim[cluster].url, headers=headers, verify=context, timeout=30)


@pytest.fixture
async def http(sim: SimulatedClusters) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(sim) as client:
        yield client


def _deployment(replicas: Any = 1, name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            },
        },
    }


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


BAD_REQUESTS: list[tuple[str, str, str, str, bytes, int, str]] = [
    ("malformed JSON", "POST", CMS, JSON, b'{"apiVersion": "v1",', 400, "BadRequest"),
    ("malformed YAML", "POST", CMS, "application/yaml", b"a: [b\nc: :", 400, "BadRequest"),
    ("array body", "POST", CMS, JSON, b"[1, 2]", 400, "BadRequest"),
    ("empty body", "POST", CMS, JSON, b"", 400, "BadRequest"),
    (
        "kind does not match URL",
        "POST",
        CMS,
        JSON,
        _body({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
        400,
        "BadRequest",
    ),
    (
        "namespace does not match URL",
        "POST",
        CMS,
        JSON,
        _body({**CM, "metadata": {"name": "x", "namespace": "kube-system"}}),
        400,
        "BadRequest",
    ),
    ("wrong type", "POST", DEPLOYS, JSON, _body(_deployment("three")), 400, "BadRequest"),
    (
        "invalid name",
        "POST",
        DEPLOYS,
        JSON,
        _body(_deployment(name="Not_A_Name")),
        422,
        "Invalid",
    ),
    (
        "missing required field",
        "POST",
        DEPLOYS,
        JSON,
        _body({**_deployment(), "spec": {"replicas": 1}}),
        422,
        "Invalid",
    ),
    (
        "unknown field under Strict",
        "POST",
        CMS + "?fieldValidation=Strict",
        JSON,
        _body({**CM, "metadata": {"name": "x"}, "bogus": True}),
        400,
        "BadRequest",
    ),
    (
        "bad fieldValidation value",
        "POST",
        CMS + "?fieldValidation=Loose",
        JSON,
        _body({**CM, "metadata": {"name": "x"}}),
        400,
        "BadRequest",
    ),
    ("already exists", "POST", CMS, JSON, _body(CM), 409, "AlreadyExists"),
    (
        "oversized",
        "POST",
        CMS,
        JSON,
        _body({**CM, "metadata": {"name": "big"}, "data": {"x": "y" * (4 * 1024 * 1024)}}),
        413,
        "RequestEntityTooLarge",
    ),
    (
        "protobuf body naming no kind",
        "POST",
        CMS,
        "application/vnd.kubernetes.protobuf",
        b"k8s\x00",
        400,
        "BadRequest",
    ),
    (
        "protobuf body without the magic bytes",
        "POST",
        CMS,
        "application/vnd.kubernetes.protobuf",
        b"\x0a\x02hi",
        400,
        "BadRequest",
    ),
    (
        "stale resourceVersion",
        "PUT",
        CMS + "/base",
        JSON,
        _body({**CM, "metadata": {"name": "base", "resourceVersion": "1"}}),
        409,
        "Conflict",
    ),
    (
        "name does not match URL",
        "PUT",
        CMS + "/base",
        JSON,
        _body({**CM, "metadata": {"name": "other"}}),
        400,
        "BadRequest",
    ),
    (
        "failing JSON patch test",
        "PATCH",
        CMS + "/base",
        "application/json-patch+json",
        _body([{"op": "test", "path": "/data/n", "value": "9"}, {"op": "remove", "path": "/data"}]),
        422,
        "Invalid",
    ),
    (
        "unknown patch type",
        "PATCH",
        CMS + "/base",
        "text/plain",
        b"{}",
        415,
        "UnsupportedMediaType",
    ),
    (
        "apply without fieldManager",
        "PATCH",
        CMS + "/base",
        "application/apply-patch+yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\n",
        400,
        "BadRequest",
    ),
    ("missing object", "DELETE", CMS + "/nope", JSON, b"", 404, "NotFound"),
    ("unknown resource", "GET", "/api/v1/namespaces/default/widgets", JSON, b"", 404, "NotFound"),
    ("bad label selector", "GET", CMS + "?labelSelector=a%20in%20b", JSON, b"", 400, "BadRequest"),
    ("bad field selector", "GET", CMS + "?fieldSelector=data.n%3D1", JSON, b"", 400, "BadRequest"),
    ("bad limit", "GET", CMS + "?limit=ten", JSON, b"", 400, "BadRequest"),
    ("object path without namespace", "GET", "/api/v1/configmaps/base", JSON, b"", 404, "NotFound"),
    (
        "create across namespaces",
        "POST",
        "/api/v1/configmaps",
        JSON,
        _body(CM),
        405,
        "MethodNotAllowed",
    ),
    ("bad continue", "GET", CMS + "?limit=1&continue=%21%21", JSON, b"", 400, "BadRequest"),
    (
        "missing namespace",
        "POST",
        "/api/v1/namespaces/nowhere/configmaps",
        JSON,
        _body(CM),
        404,
        "NotFound",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "content_type", "body", "code", "reason"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
async def test_bad_requests_get_status_and_change_nothing(
    sim: SimulatedClusters,
    http: httpx.AsyncClient,
    method: str,
    path: str,
    content_type: str,
    body: bytes,
    code: int,
    reason: str,
) -> None:
    api = sim["c1"].api
    api.create(CM)
    before = (api.revision, api.list("configmaps"), api.list("deployments.apps"))
    response = await http.request(
        method, path, content=body, headers={"Content-Type": content_type}
    )
    status = response.json()
    assert (response.status_code, status["kind"], status["code"], status["reason"]) == (
        code,
        "Status",
        code,
        reason,
    ), status
    assert status["message"]
    assert (api.revision, api.list("configmaps"), api.list("deployments.apps")) == before


async def test_concurrent_read_modify_write_loops(
    sim: SimulatedClusters, http: httpx.AsyncClient
) -> None:
    api = sim["c1"].api
    api.create({**CM, "metadata": {"name": "counter"}})
    url = CMS + "/counter"

    async def writer(rounds: int) -> tuple[int, int]:
        won = lost = 0
        for _ in range(rounds):
            current = (await http.get(url)).json()
            await asyncio.sleep(0)
            current["data"]["n"] = str(int(current["data"]["n"]) + 1)
            response = await http.put(url, json=current)
            if response.status_code == 200:
                won += 1
            else:
                assert response.status_code == 409, response.text
                assert response.json()["reason"] == "Conflict"
                lost += 1
        return won, lost

    results = await asyncio.gather(*(writer(15) for _ in range(6)))
    won = sum(w for w, _ in results)
    lost = sum(lost for _, lost in results)
    assert won + lost == 90
    assert lost > 0, "the loops never raced; the test would prove nothing"
    assert api.get("configmaps", "counter")["data"]["n"] == str(won)


async def _events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        if line.strip():
            yield json.loads(line)


async def test_watch_stream_bookmarks_timeout_and_expiry(
    sim: SimulatedClusters, http: httpx.AsyncClient
) -> None:
    api = sim["c1"].api
    start = api.revision
    api.create({**CM, "metadata": {"name": "w", "labels": {"k": "v"}}})
    api.patch("configmaps", "w", {"data": {"n": "1"}})
    seen: list[tuple[str, str]] = []
    params = {
        "watch": "true",
        "resourceVersion": str(start),
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "1",
        "labelSelector": "k=v",
    }
    async with http.stream("GET", CMS, params=params) as response:
        assert response.status_code == 200
        async for event in _events(response):
            seen.append((event["type"], event["object"]["metadata"]["resourceVersion"]))
    types = [t for t, _ in seen]
    assert types[:2] == ["ADDED", "MODIFIED"]
    assert "BOOKMARK" in types
    assert seen[-1] == ("BOOKMARK", str(api.revision))

    for i in range(sim["c1"].api.store.history_size + 2):
        api.patch("configmaps", "w", {"data": {"n": str(i)}})
    params = {"watch": "1", "resourceVersion": str(start)}
    async with http.stream("GET", CMS, params=params) as response:
        events = [e async for e in _events(response)]
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


async def test_anonymous_rejected_and_rbac_enforced(tmp_path: Path) -> None:
    async with SimulatedClusters(["c1"], kubeconfig_path=tmp_path / "kc", rbac=True) as sim:
        async with _client(sim, token="not-a-token") as anonymous:
            response = await anonymous.get(CMS)
            assert response.status_code == 401 and response.json()["reason"] == "Unauthorized"
            assert (await anonymous.get("/healthz")).status_code == 200
        token = sim.add_user("alice", groups=["devs"])
        async with _client(sim) as admin, _client(sim, token=token) as alice:
            denied = await alice.get(CMS)
            assert denied.status_code == 403 and denied.json()["reason"] == "Forbidden"
            review = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {
                    "resourceAttributes": {
                        "verb": "list",
                        "resource": "configmaps",
                        "namespace": "default",
                    }
                },
            }
            reviews = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
            assert (await alice.post(reviews, json=review)).json()["status"]["allowed"] is False
            role = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "cm-reader", "namespace": "default"},
                "rules": [
                    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}
                ],
            }
            binding = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "devs-read", "namespace": "default"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "cm-reader",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "devs"}
                ],
            }
            rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
            assert (await admin.post(f"{rbac}/roles", json=role)).status_code == 201
            assert (await admin.post(f"{rbac}/rolebindings", json=binding)).status_code == 201
            assert (await alice.get(CMS)).status_code == 200
            write = await alice.post(CMS, json=CM)
            assert write.status_code == 403
            assert (await alice.post(reviews, json=review)).json()["status"]["allowed"] is True
            sar = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": "bob",
                    "groups": ["devs"],
                    "resourceAttributes": {
                        "verb": "delete",
                        "resource": "configmaps",
                        "namespace": "default",
                    },
                },
            }
            answer = await admin.post(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews", json=sar
            )
            assert answer.status_code == 201 and answer.json()["status"]["allowed"] is False


async def test_objects_and_revision_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with SimulatedClusters(["c1"], data_dir=data, kubeconfig_path=tmp_path / "kc") as sim:
        api = sim["c1"].api
        api.create({**CM, "metadata": {"name": "kept"}})
        api.create({**CM, "metadata": {"name": "dropped"}})
        api.delete("configmaps", "dropped")
        revision = api.revision
        token = sim.admin_token
    async with SimulatedClusters(["c1"], data_dir=data, kubeconfig_path=tmp_path / "kc") as sim:
        api = sim["c1"].api
        assert sim.admin_token == token
        assert api.revision == revision
        names = [
            o["metadata"]["name"] for o in api.list("configmaps", namespace="default")["items"]
        ]
        assert names == ["kept"]
        made = api.create({**CM, "metadata": {"name": "after"}})
        assert int(made["metadata"]["resourceVersion"]) == revision + 1
        async with _client(sim) as http:
            assert (await http.get(CMS + "/kept")).status_code == 200


async def test_pod_subresources_over_http(sim: SimulatedClusters, http: httpx.AsyncClient) -> None:
    api = sim["c1"].api
    pods = "/api/v1/namespaces/default/pods"
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "main", "image": "busybox:1"}]},
    }
    assert (await http.post(pods, json=body)).status_code == 201
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"},
    }
    assert (await http.post(f"{pods}/p/binding", json=binding)).status_code == 201
    assert api.get("pods", "p")["spec"]["nodeName"] == "n1"
    api.write_log("p", "main", "hello\nworld")
    log = await http.get(f"{pods}/p/log", params={"tailLines": "1"})
    assert (log.status_code, log.text) == (200, "world\n")
    status = await http.patch(
        f"{pods}/p/status",
        json={"status": {"phase": "Running"}, "spec": {"nodeName": "elsewhere"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert status.status_code == 200
    assert status.json()["status"]["phase"] == "Running"
    assert status.json()["spec"]["nodeName"] == "n1"
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p"}}
    evicted = await http.post(f"{pods}/p/eviction", json=eviction)
    assert evicted.status_code == 201 and evicted.json()["status"] == "Success"
    assert (await http.get(f"{pods}/p")).status_code == 404


async def test_discovery_documents(http: httpx.AsyncClient) -> None:
    core = (await http.get("/api/v1")).json()
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert pods["namespaced"] is True and "po" in pods["shortNames"]
    assert any(r["name"] == "pods/eviction" for r in core["resources"])
    aggregated = await http.get(
        "/apis",
        headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"},
    )
    assert aggregated.headers["Content-Type"].startswith("application/json;g=apidiscovery")
    groups = {g["metadata"]["name"]: g for g in aggregated.json()["items"]}
    apps = groups["apps"]["versions"][0]["resources"]
    deployments = next(r for r in apps if r["resource"] == "deployments")
    assert {s["subresource"] for s in deployments["subresources"]} == {"status", "scale"}
    plain = (await http.get("/apis")).json()
    assert plain["kind"] == "APIGroupList"
    assert (await http.get("/version")).json()["minor"] == "32"
    index = (await http.get("/openapi/v3")).json()
    assert "apis/apps/v1" in index["paths"]


async def test_yaml_body_dry_run_and_warnings(
    sim: SimulatedClusters, http: httpx.AsyncClient
) -> None:
    api = sim["c1"].api
    manifest = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\ndata: {k: v}\nextra: 1\n"
    yaml_headers = {"Content-Type": "application/yaml"}
    before = api.revision
    dry = await http.post(CMS, params={"dryRun": "All"}, content=manifest, headers=yaml_headers)
    assert dry.status_code == 201 and dry.json()["data"] == {"k": "v"}
    assert api.revision == before
    made = await http.post(CMS, content=manifest, headers=yaml_headers)
    assert made.status_code == 201
    assert "extra" not in made.json()
    assert 'unknown field \\"extra\\"' in made.headers["Warning"]
    assert api.get("configmaps", "y")["data"] == {"k": "v"}


async def test_duplicate_json_keys_fail_strict_and_warn_otherwise(
    sim: SimulatedClusters, http: httpx.AsyncClient
) -> None:
    api = sim["c1"].api
    body = (
        b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"},'
        b' "data": {"k": "1", "k": "2"}}'
    )
    headers = {"Content-Type": JSON}
    before = api.revision
    strict = await http.post(
        CMS, params={"fieldValidation": "Strict"}, content=body, headers=headers
    )
    assert strict.status_code == 400 and strict.json()["reason"] == "BadRequest"
    assert strict.json()["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'duplicate field "data.k"'
    )
    assert api.revision == before

    warned = await http.post(CMS, content=body, headers=headers)
    assert warned.status_code == 201 and warned.json()["data"] == {"k": "2"}
    assert warned.headers["Warning"] == '299 - "duplicate field \\"data.k\\""'

    ignored = await http.put(
        f"{CMS}/d", params={"fieldValidation": "Ignore"}, content=body, headers=headers
    )
    assert ignored.status_code == 200 and "Warning" not in ignored.headers

    patch = b'{"data": {"k": "3", "k": "4"}}'
    refused = await http.patch(
        f"{CMS}/d",
        params={"fieldValidation": "Strict"},
        content=patch,
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert refused.status_code == 400
    assert 'duplicate field "data.k"' in refused.json()["message"]
    assert api.get("configmaps", "d")["data"] == {"k": "2"}


async def test_watch_list_sends_initial_events_then_a_bookmark(
    sim: SimulatedClusters, http: httpx.AsyncClient
) -> None:
    sim["c1"].api.create({**CM, "metadata": {"name": "present"}})
    params = {
        "watch": "true",
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "1",
    }
    async with http.stream("GET", CMS, params=params) as response:
        events = [e async for e in _events(response)]
    assert (events[0]["type"], events[0]["object"]["metadata"]["name"]) == ("ADDED", "present")
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_disconnected_watch_releases_its_watcher(
    sim: SimulatedClusters, http: httpx.AsyncClient
) -> None:
    store = sim["c1"].api.store
    before = store.watcher_count()
    async with http.stream("GET", CMS, params={"watch": "1"}) as response:
        assert response.status_code == 200
        assert store.watcher_count() == before + 1
    for _ in range(50):
        if store.watcher_count() == before:
            break
        await asyncio.sleep(0.05)
    assert store.watcher_count() == before


async def test_paused_server_refuses_and_breaks_open_watches_then_resumes(
    sim: SimulatedClusters, http: httpx.AsyncClient
) -> None:
    server = sim["c1"].server
    url = server.url
    async with http.stream("GET", CMS, params={"watch": "1"}) as response:
        assert response.status_code == 200
        await server.pause_listening()
        with pytest.raises(httpx.HTTPError):
            async for _ in response.aiter_lines():
                pass
    with pytest.raises(httpx.ConnectError):
        async with _client(sim) as fresh:
            await fresh.get(CMS)
    await server.resume_listening()
    assert server.url == url
    async with _client(sim) as fresh:
        assert (await fresh.get(CMS)).status_code == 200


class HttpMirror:
    """list + watch over HTTP, reconnecting after a few events and relisting after 410."""

    def __init__(self, http: httpx.AsyncClient, selector: str, seed: int) -> None:
        self.http = http
        self.selector = selector
        self.rng = random.Random(seed)
        self.state: dict[str, dict[str, Any]] = {}
        self.rv = 0
        self.relists = 0
        self.reconnects = 0

    async def relist(self) -> None:
        listed = (await self.http.get(CMS, params={"labelSelector": self.selector})).json()
        self.state = {o["metadata"]["name"]: o for o in listed["items"]}
        self.rv = int(listed["metadata"]["resourceVersion"])
        self.relists += 1

    def apply(self, event: dict[str, Any]) -> None:
        obj, kind = event["object"], event["type"]
        revision = int(obj["metadata"]["resourceVersion"])
        if kind == "BOOKMARK":
            assert revision >= self.rv
            self.rv = revision
            return
        name = obj["metadata"]["name"]
        assert revision > self.rv, f"duplicate or out-of-order {kind} {name}"
        self.rv = revision
        if kind == "ADDED":
            assert name not in self.state, f"ADDED {name} twice"
            self.state[name] = obj
        elif kind == "MODIFIED":
            assert name in self.state, f"MODIFIED {name} before ADDED"
            self.state[name] = obj
        else:
            assert kind == "DELETED" and name in self.state, f"{kind} {name} unexpected"
            del self.state[name]

    async def run(self) -> None:
        await self.relist()
        while True:
            params = {
                "watch": "1",
                "resourceVersion": str(self.rv),
                "allowWatchBookmarks": "true",
                "labelSelector": self.selector,
            }
            budget = self.rng.randint(1, 12)
            async with self.http.stream("GET", CMS, params=params) as response:
                async for event in _events(response):
                    if event["type"] == "ERROR":
                        assert event["object"]["code"] == 410
                        await self.relist()
                        break
                    self.apply(event)
                    budget -= 1
                    if budget == 0:
                        break
            self.reconnects += 1


async def test_http_watchers_with_forced_reconnects_mirror_the_store(
    sim: SimulatedClusters, http: httpx.AsyncClient
) -> None:
    api = sim["c1"].api
    api.store.history_size = 15
    rng = random.Random(2024)
    mirrors = [HttpMirror(http, sel, seed) for seed, sel in enumerate(["", "c=red", "c!=red"])]
    tasks = [asyncio.create_task(m.run()) for m in mirrors]
    await asyncio.sleep(0.2)
    for step in range(300):
        name = f"cm-{rng.randint(0, 7)}"
        existing = api.store.get(("", "configmaps"), "default", name)
        color = rng.choice(["red", "blue"])
        if existing is None:
            api.create({**CM, "metadata": {"name": name, "labels": {"c": color}}})
        elif rng.random() < 0.7:
            api.patch(
                "configmaps", name, {"metadata": {"labels": {"c": color}}, "data": {"n": str(step)}}
            )
        else:
            api.delete("configmaps", name)
        if step % 7 == 0:
            await asyncio.sleep(0.01)
    final = api.revision
    for _ in range(200):
        if all(m.rv >= final for m in mirrors):
            break
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if not isinstance(outcome, asyncio.CancelledError):
            raise AssertionError(f"a watcher failed: {outcome!r}")
    for mirror in mirrors:
        assert mirror.rv >= final
        expected = api.list("configmaps", namespace="default", label_selector=mirror.selector)
        assert mirror.state == {o["metadata"]["name"]: o for o in expected["items"]}
    assert sum(m.reconnects for m in mirrors) > 10
    assert sum(m.relists for m in mirrors) > len(mirrors), "no watcher ever got 410 Expired"

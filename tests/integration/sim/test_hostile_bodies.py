"""Hostile request bodies: alias bombs, deep nesting, odd YAML keys, identity-changing
patches and overlong field managers get the 4xx a real server answers, store nothing,
and never stop the other simulated clusters of the process from answering."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from milkyway.sim.clusters import SimulatedClusters

CMS = "/api/v1/namespaces/default/configmaps"
YAML = "application/yaml"
JSON = "application/json"


def _client(sim: SimulatedClusters, cluster: str) -> httpx.AsyncClient:
    assert sim.certificate is not None
    context = ssl.create_default_context(cadata=sim.certificate.ca_pem.decode())
    headers = {"Authorization": f"Bearer {sim.admin_token}"}
    return httpx.AsyncClient(base_url=sim[cluster].url, headers=headers, verify=context, timeout=60)


@pytest.fixture
async def c1(sim: SimulatedClusters) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(sim, "c1") as client:
        yield client


@pytest.fixture
async def c2(sim: SimulatedClusters) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(sim, "c2") as client:
        yield client


def alias_bomb(levels: int, fan_out: int = 9, root: str = "data") -> str:
    """A ConfigMap whose ``levels`` anchors each repeat the previous one ``fan_out`` times."""
    lines = [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: bomb}",
        f"{root}:",
        "  l0: &a0 [" + ", ".join(['"lol"'] * fan_out) + "]",
    ]
    lines += [
        f"  l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan_out) + "]" for i in range(1, levels)
    ]
    return "\n".join(lines) + "\n"


async def _stored_names(client: httpx.AsyncClient) -> list[str]:
    listed = (await client.get(CMS)).json()
    return [item["metadata"]["name"] for item in listed["items"]]


async def _keep_asking(client: httpx.AsyncClient, stop: asyncio.Event) -> list[float]:
    """Latencies of GETs against another cluster until ``stop`` is set."""
    latencies: list[float] = []
    while not stop.is_set():
        started = time.perf_counter()
        response = await client.get("/api/v1/namespaces")
        assert response.status_code == 200
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.01)
    return latencies


@pytest.mark.parametrize("levels", [6, 7, 8, 9])
@pytest.mark.parametrize(
    "content_type", [YAML, "application/apply-patch+yaml", "application/x-yaml"]
)
async def test_yaml_alias_bomb_is_refused_and_nothing_is_stored(
    c1: httpx.AsyncClient, levels: int, content_type: str
) -> None:
    body = alias_bomb(levels)
    assert len(body) < 700
    if content_type == "application/apply-patch+yaml":
        url = f"{CMS}/bomb?fieldManager=test"
        response = await c1.patch(url, content=body, headers={"Content-Type": content_type})
    else:
        response = await c1.post(CMS, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text[:300]
    status = response.json()
    assert status["reason"] == "BadRequest"
    assert "document contains excessive aliasing" in status["message"]
    assert "bomb" not in await _stored_names(c1)


async def test_alias_bomb_sent_as_json_is_refused(c1: httpx.AsyncClient) -> None:
    response = await c1.post(CMS, content=alias_bomb(8), headers={"Content-Type": JSON})
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


async def test_expanded_bomb_as_json_is_over_the_request_limit(c1: httpx.AsyncClient) -> None:
    """The JSON a 7-level bomb means is 4 MB: past the 3 MiB request limit."""
    value: Any = ["lol"] * 9
    for _ in range(6):
        value = [value] * 9
    body = json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}, "x": value}
    )
    response = await c1.post(CMS, content=body, headers={"Content-Type": JSON})
    assert response.status_code == 413
    assert "j" not in await _stored_names(c1)


async def test_json_patch_copies_cannot_grow_an_object_past_the_limit(
    c1: httpx.AsyncClient,
) -> None:
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "grow"}}
    assert (await c1.post(CMS, json=base)).status_code == 201
    # Each copy appends the whole list to itself: 2**30 copies of a 1000-byte string.
    ops: list[dict[str, Any]] = [{"op": "add", "path": "/x", "value": ["x" * 1000]}]
    ops += [{"op": "copy", "from": "/x", "path": "/x/-"} for _ in range(30)]
    response = await c1.patch(
        f"{CMS}/grow",
        content=json.dumps(ops),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 422, response.text[:300]
    assert "accumulated size increase of copy" in response.text
    stored = (await c1.get(f"{CMS}/grow")).json()
    assert "x" not in stored


async def test_bombs_do_not_stop_another_cluster_from_answering(
    c1: httpx.AsyncClient, c2: httpx.AsyncClient
) -> None:
    stop = asyncio.Event()
    asker = asyncio.create_task(_keep_asking(c2, stop))
    try:
        for levels in (6, 7, 8, 9):
            response = await c1.post(
                CMS, content=alias_bomb(levels), headers={"Content-Type": YAML}
            )
            assert response.status_code == 400
        # A large flat YAML body (under the request limit) takes seconds to decode; it is
        # decoded beside the event loop, so the other cluster keeps answering meanwhile.
        flat = (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flat}\nx: ["
            + ",".join(["0"] * 200_000)
            + "]\n"
        )
        started = time.perf_counter()
        response = await c1.post(CMS, content=flat, headers={"Content-Type": YAML})
        decode_seconds = time.perf_counter() - started
        assert response.status_code in (201, 400, 422), response.text[:300]
    finally:
        stop.set()
        latencies = await asker
    assert len(latencies) >= 5
    assert max(latencies) < max(decode_seconds, 1.0), (max(latencies), decode_seconds)


@pytest.mark.parametrize("depth", [101, 500, 5000])
async def test_deeply_nested_json_is_a_400(c1: httpx.AsyncClient, depth: int) -> None:
    nested = '{"a": ' * depth + '"leaf"' + "}" * depth
    body = '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep"}, "x": '
    response = await c1.post(CMS, content=body + nested + "}", headers={"Content-Type": JSON})
    assert response.status_code == 400, response.text[:300]
    assert "nested" in response.json()["message"] or "not valid JSON" in response.json()["message"]


@pytest.mark.parametrize("depth", [500, 200_000])
async def test_deeply_nested_yaml_is_a_400_and_the_server_survives(
    c1: httpx.AsyncClient, depth: int
) -> None:
    body = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\nx: " + "[" * depth + "]" * depth
    )
    response = await c1.post(CMS, content=body, headers={"Content-Type": YAML})
    assert response.status_code == 400
    assert "nested more than 100 levels" in response.json()["message"]
    assert (await c1.get("/api/v1/namespaces")).status_code == 200


async def test_yaml_integer_and_boolean_keys_become_strings(c1: httpx.AsyncClient) -> None:
    body = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keys}\n"
        "data:\n  2: two\n  true: yes-text\n"
    )
    response = await c1.post(CMS, content=body, headers={"Content-Type": YAML})
    assert response.status_code == 201, response.text[:300]
    assert response.json()["data"] == {"2": "two", "true": "yes-text"}


async def test_yaml_null_and_list_keys_are_a_400(c1: httpx.AsyncClient) -> None:
    for key in ("~", "[a, b]"):
        body = (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: keys}}\ndata:\n  ? {key}\n  : v\n"
        )
        response = await c1.post(CMS, content=body, headers={"Content-Type": YAML})
        assert response.status_code == 400, response.text[:300]
        assert "key" in response.json()["message"]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"metadata": {"name": "other"}},
            "the name of the object (other) does not match the name on the URL (p)",
        ),
        (
            {"metadata": {"namespace": "kube-system"}},
            "the namespace of the object (kube-system) does not match the namespace on the URL "
            "(default)",
        ),
        ({"kind": "Secret"}, "kind (Secret) do not match the resource configmaps"),
        ({"apiVersion": "v2"}, "the API version in the data (v2)"),
    ],
)
@pytest.mark.parametrize("patch_type", ["merge", "json"])
async def test_a_patch_cannot_change_which_object_it_is(
    c1: httpx.AsyncClient, patch: dict[str, Any], message: str, patch_type: str
) -> None:
    created = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}, "data": {}}
    response = await c1.post(CMS, json=created)
    assert response.status_code == 201
    version = response.json()["metadata"]["resourceVersion"]
    if patch_type == "merge":
        body, content_type = patch, "application/merge-patch+json"
    else:
        ((key, value),) = patch.items()
        if isinstance(value, dict):
            ((inner, leaf),) = value.items()
            body = [{"op": "replace", "path": f"/{key}/{inner}", "value": leaf}]
        else:
            body = [{"op": "replace", "path": f"/{key}", "value": value}]
        content_type = "application/json-patch+json"
    response = await c1.patch(
        f"{CMS}/p", content=json.dumps(body), headers={"Content-Type": content_type}
    )
    assert response.status_code == 400, response.text[:300]
    assert message in response.json()["message"]
    assert (await c1.get(f"{CMS}/p")).json()["metadata"]["resourceVersion"] == version
    assert "other" not in await _stored_names(c1)


@pytest.mark.parametrize(
    ("method", "kind"),
    [("POST", "CreateOptions"), ("PUT", "UpdateOptions"), ("PATCH", "PatchOptions")],
)
async def test_a_field_manager_over_128_bytes_is_a_422(
    c1: httpx.AsyncClient, method: str, kind: str
) -> None:
    created = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fm"}, "data": {}}
    assert (await c1.post(CMS, json=created)).status_code == 201
    manager = "m" * 300
    if method == "POST":
        response = await c1.post(
            f"{CMS}?fieldManager={manager}", json={**created, "metadata": {"name": "fm2"}}
        )
    elif method == "PUT":
        current = (await c1.get(f"{CMS}/fm")).json()
        response = await c1.put(f"{CMS}/fm?fieldManager={manager}", json=current)
    else:
        response = await c1.patch(
            f"{CMS}/fm?fieldManager={manager}",
            content=json.dumps({"data": {"a": "b"}}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
    assert response.status_code == 422, response.text[:300]
    status = response.json()
    assert status["message"] == (
        f'{kind}.meta.k8s.io "" is invalid: fieldManager: Too long: may not be more than 128 bytes'
    )
    assert status["details"]["causes"][0]["field"] == "fieldManager"
    assert "fm2" not in await _stored_names(c1)


async def test_a_field_manager_of_128_bytes_is_accepted(c1: httpx.AsyncClient) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok"}, "data": {"a": "b"}}
    response = await c1.post(f"{CMS}?fieldManager={'m' * 128}", json=body)
    assert response.status_code == 201
    assert response.json()["metadata"]["managedFields"][0]["manager"] == "m" * 128


async def test_a_field_manager_with_a_control_character_is_a_422(c1: httpx.AsyncClient) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ctl"}}
    response = await c1.post(CMS, params={"fieldManager": "a\tb"}, json=body)
    assert response.status_code == 422
    assert "invalid character U+0009" in response.json()["message"]

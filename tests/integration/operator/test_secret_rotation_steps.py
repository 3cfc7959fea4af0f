"""The steps of a generated Secret's rotation, against two simulated clusters: each one
run twice (as the engine does after a crash) makes one value, and two writers racing
end with one value."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from lightkube import AsyncClient, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Pod
from tests.polling import eventually

from milkyway.flows.tasks import RetryableError, TaskContext
from milkyway.kube.agent_contract import AGENT_CONFIG_FILE
from milkyway.kube.generated_secrets import (
    ROTATION_ANNOTATION,
    SECRET_SOURCE,
    VERSION_ANNOTATION,
    StaleWrite,
    annotations_of,
    ensure_source,
    read_secret,
    secret_files,
    write_rotation,
)
from milkyway.kube.labels import APPLICATION, COMPONENT, ZONE
from milkyway.operator.tasks.secret_rotation import (
    CopyParams,
    WriteParams,
    delete_generated_secrets,
    ensure_generated_secrets,
    secret_copy,
    secret_retire,
    secret_write,
)
from milkyway.sim.clusters import SimulatedClusters

NS = "rotation"
NAME = "app-zk-auth"
SOURCE = {"cluster": "c1", "namespace": NS}


@pytest.fixture
async def clients(sim: SimulatedClusters) -> AsyncIterator[dict[str, AsyncClient]]:
    config = KubeConfig.from_file(sim.kubeconfig_path)
    made = {name: AsyncClient(config.get(name)) for name in ("c1", "c2")}
    for client in made.values():
        await client.create(Namespace(metadata=ObjectMeta(name=NS)))
    try:
        yield made
    finally:
        for client in made.values():
            await client.close()


def _ctx(clients: dict[str, AsyncClient], run: str, step: str = "write") -> TaskContext:
    return TaskContext(
        run_id=run, step=step, attempt=1, clients=clients, logger=logging.getLogger("test")
    )


def _value(obj: dict[str, Any] | None, key: str = "password") -> str | None:
    assert obj is not None
    found = secret_files(obj).get(key)
    return None if found is None else found.decode()


async def _source(clients: dict[str, AsyncClient]) -> dict[str, Any]:
    return await ensure_source(clients["c1"], NS, NAME, "password", "first-value-0123", {})


async def test_the_write_step_run_twice_makes_one_value(clients: dict[str, AsyncClient]) -> None:
    await _source(clients)
    params = WriteParams.model_validate({"secret": NAME, "source": SOURCE, "length": 24})
    first = await secret_write(params, _ctx(clients, "rotate-1"))
    written = _value(await read_secret(clients["c1"], NS, NAME))
    again = await secret_write(params, _ctx(clients, "rotate-1"))
    live = await read_secret(clients["c1"], NS, NAME)
    assert _value(live) == written and written is not None and len(written) == 24
    assert _value(live, "password.previous") == "first-value-0123"
    assert annotations_of(live or {})[VERSION_ANNOTATION] == "2"
    assert first == again and first["rotation"] == "rotate-1"
    assert written not in str(first), "a step result must not hold the secret"
    await secret_write(params, _ctx(clients, "rotate-2"))
    third = await read_secret(clients["c1"], NS, NAME)
    assert annotations_of(third or {})[VERSION_ANNOTATION] == "3"
    assert _value(third, "password.previous") == written


async def test_racing_writers_of_one_rotation_end_with_one_value(
    clients: dict[str, AsyncClient],
) -> None:
    await _source(clients)
    outcomes = await asyncio.gather(
        *(
            write_rotation(clients["c1"], NS, NAME, "password", f"value-{i}-abcdefghijk", "r")
            for i in range(4)
        ),
        return_exceptions=True,
    )
    winners = {_value(o) for o in outcomes if isinstance(o, dict)}
    losers = [o for o in outcomes if not isinstance(o, dict)]
    assert all(isinstance(o, StaleWrite) for o in losers), losers
    live = await read_secret(clients["c1"], NS, NAME)
    assert winners == {_value(live)}
    retried = await write_rotation(clients["c1"], NS, NAME, "password", "another-value-xyz", "r")
    assert _value(retried) == _value(live)
    assert annotations_of(live or {})[VERSION_ANNOTATION] == "2"


async def test_copy_and_retire_run_twice_change_nothing_more(
    clients: dict[str, AsyncClient],
) -> None:
    await _source(clients)
    write = WriteParams.model_validate({"secret": NAME, "source": SOURCE})
    await secret_write(write, _ctx(clients, "rotate-1"))
    copy = CopyParams.model_validate(
        {"secret": NAME, "source": SOURCE, "cluster": "c2", "namespace": NS}
    )
    for _ in range(2):
        await secret_copy(copy, _ctx(clients, "rotate-1", "copy"))
    source = await read_secret(clients["c1"], NS, NAME)
    copied = await read_secret(clients["c2"], NS, NAME)
    assert secret_files(copied or {}) == secret_files(source or {})
    assert annotations_of(copied or {})[ROTATION_ANNOTATION] == "rotate-1"
    version = (copied or {})["metadata"]["resourceVersion"]
    await secret_copy(copy, _ctx(clients, "rotate-1", "copy"))
    again = await read_secret(clients["c2"], NS, NAME)
    assert (again or {})["metadata"]["resourceVersion"] == version, "an equal copy is not rewritten"

    for _ in range(2):
        await secret_retire(write, _ctx(clients, "rotate-1", "retire"))
    retired = await read_secret(clients["c1"], NS, NAME)
    assert set(secret_files(retired or {})) == {"password"}
    assert _value(retired) == _value(source)
    with pytest.raises(Exception, match="last written by 'rotate-1'"):
        await secret_retire(write, _ctx(clients, "rotate-other", "retire"))


def _config_map() -> dict[str, Any]:
    declaration = (
        '{"actions": [{"name": "reload", "command": ["true"]}], "secrets": '
        '[{"name": "auth", "path": "/etc/auth", "reloadAction": "reload", '
        '"generate": {"length": 20, "alphabet": "hex"}}]}'
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "app-zk-b",
            "namespace": NS,
            "labels": {APPLICATION: "app", COMPONENT: "zk"},
            "annotations": {SECRET_SOURCE: "c1"},
        },
        "data": {AGENT_CONFIG_FILE: declaration},
    }


async def test_applying_zones_creates_one_source_and_copies_it(
    clients: dict[str, AsyncClient],
) -> None:
    manifests = [_config_map()]
    await ensure_generated_secrets(_ctx(clients, "apply", "apply"), "c2", NS, manifests)
    await ensure_generated_secrets(_ctx(clients, "apply", "apply"), "c1", NS, manifests)
    await ensure_generated_secrets(_ctx(clients, "apply", "apply"), "c2", NS, manifests)
    source = await read_secret(clients["c1"], NS, "app-zk-auth")
    copied = await read_secret(clients["c2"], NS, "app-zk-auth")
    value = _value(source)
    assert value is not None and len(value) == 20 and set(value) <= set("0123456789abcdef")
    assert _value(copied) == value
    assert annotations_of(source or {})[ROTATION_ANNOTATION] == "initial"


async def test_a_deleted_zone_takes_the_secret_once_no_member_is_left(
    clients: dict[str, AsyncClient],
) -> None:
    ctx = _ctx(clients, "delete", "delete")
    await ensure_generated_secrets(ctx, "c1", NS, [_config_map()])
    other_zone = {APPLICATION: "app", COMPONENT: "zk", ZONE: "b"}
    await clients["c1"].create(
        Pod.from_dict(
            {
                "metadata": {"name": "app-zk-b-0", "namespace": NS, "labels": other_zone},
                "spec": {"containers": [{"name": "main", "image": "zk"}]},
            }
        )
    )
    deleting = {APPLICATION: "app", COMPONENT: "zk", ZONE: "a"}
    assert await delete_generated_secrets(ctx, "c1", NS, deleting) == []
    assert await read_secret(clients["c1"], NS, "app-zk-auth") is not None
    await clients["c1"].delete(Pod, "app-zk-b-0", namespace=NS, grace_period=0)

    async def gone() -> bool:
        return not [p async for p in clients["c1"].list(Pod, namespace=NS)]

    await eventually(gone, what="the other zone's member to go")
    assert await delete_generated_secrets(ctx, "c1", NS, deleting) == ["app-zk-auth"]
    assert await read_secret(clients["c1"], NS, "app-zk-auth") is None


async def test_a_zone_applied_before_the_first_zones_namespace_exists_retries(
    clients: dict[str, AsyncClient],
) -> None:
    manifest = _config_map()
    manifest["metadata"]["namespace"] = "later"
    ctx = _ctx(clients, "apply", "apply")
    with pytest.raises(RetryableError, match="first zone's namespace is not there"):
        await ensure_generated_secrets(ctx, "c2", "later", [manifest])
    assert await read_secret(clients["c2"], "later", "app-zk-auth") is None

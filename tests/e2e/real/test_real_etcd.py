"""The etcd example runs as a real etcd cluster over three simulated clusters, from the
rendered configuration unchanged; a key written through one member reads from another."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import aiohttp
import pytest

from ..conftest import World

EXAMPLE = Path(__file__).parents[3] / "examples" / "etcd.yaml"
NS, APP = "etcd-demo", "config-store"

pytestmark = pytest.mark.slow


def _addresses(world: World) -> dict[str, str]:
    found = {}
    for member in world.members:
        runtime = world.sim[member.name].runtime
        assert runtime is not None
        for (ns, name), box in runtime.pods.items():
            if ns == NS:
                found[name] = box.ip
    return found


async def test_etcd_example_forms_one_cluster_across_three_clusters(real_world: World) -> None:
    if shutil.which("etcd") is None:
        pytest.fail("Debian's etcd-server is needed: apt-get install -y etcd-server")
    await real_world.apply(EXAMPLE.read_text())
    await real_world.wait_ready(NS, APP, within=240)
    addresses = _addresses(real_world)
    assert len(addresses) == 3
    key = base64.b64encode(b"greeting").decode()
    value = base64.b64encode(b"hello").decode()
    first, *others = sorted(addresses.values())
    async with aiohttp.ClientSession() as session:
        for ip in addresses.values():
            async with session.get(f"http://{ip}:2379/health") as response:
                assert json.loads(await response.text())["health"] == "true"
        async with session.post(
            f"http://{first}:2379/v3/kv/put", json={"key": key, "value": value}
        ) as response:
            assert response.status == 200, await response.text()
        for ip in others:
            async with session.post(f"http://{ip}:2379/v3/kv/range", json={"key": key}) as response:
                body = await response.json(content_type=None)
                assert body["kvs"][0]["value"] == value
        async with session.post(f"http://{first}:2379/v3/cluster/member/list", json={}) as r:
            listed = (await r.json(content_type=None))["members"]
    assert len(listed) == 3

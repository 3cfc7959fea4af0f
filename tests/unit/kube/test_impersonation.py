"""The impersonating client pool: headers on every request, bounded size, evicted clients
closed after their grace period, and names that cannot be sent as headers refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from milkyway.kube.impersonation import ImpersonatingClients, impersonate


def _kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


async def test_requests_carry_user_and_every_group(tmp_path: Path) -> None:
    pool = ImpersonatingClients(_kubeconfig(tmp_path))
    client = pool.as_user("alice", ["team-a", "platform"])
    http = client._client._client
    request = http.build_request("GET", "http://127.0.0.1:1/api", headers={"Impersonate-User": "x"})
    for hook in http.event_hooks["request"]:
        await hook(request)
    assert request.headers.get_list("Impersonate-User") == ["alice"]
    assert request.headers.get_list("Impersonate-Group") == ["team-a", "platform"]
    assert pool.as_user("alice", ["team-a", "platform"]) is client
    await pool.close()


async def test_the_pool_is_bounded_and_closes_what_it_evicts(tmp_path: Path) -> None:
    pool = ImpersonatingClients(_kubeconfig(tmp_path), size=2, retire_after=0.05)
    first = pool.as_user("a", [])
    pool.as_user("b", [])
    pool.as_user("c", [])
    assert first in pool._retired
    for _ in range(100):
        if first not in pool._retired:
            break
        await asyncio.sleep(0.01)
    assert first not in pool._retired and len(pool._pool) == 2
    await pool.close()


async def test_header_injection_is_refused(tmp_path: Path) -> None:
    pool = ImpersonatingClients(_kubeconfig(tmp_path))
    with pytest.raises(ValueError, match="cannot be sent"):
        pool.as_user("alice", ["team-a\r\nImpersonate-Group: system:masters"])
    with pytest.raises(ValueError, match="cannot be sent"):
        impersonate(pool.own(), "", [])
    await pool.close()

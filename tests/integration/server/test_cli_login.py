"""``milkyway login`` against the real server over HTTPS, then verbs with ``--server``:
the session is kept with mode 0600, changes are made as the signed-in user (RBAC and
audit name them), and approvals carry the proven identity, not a declared one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from milkyway.cli.main import app as cli
from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import new_run
from milkyway.flows.kube_store import KubeStore
from milkyway.kube.resources import APPLICATION
from milkyway.model.flow import NodeStatus
from milkyway.server.tls import self_signed

from .conftest import Front, application, start_front, stop_front
from .directory import running_directory
from .test_ldap import ldap_settings

GATED = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: gated, namespace: team-a}
spec:
  steps:
    - name: confirm
      approval: {groups: [platform], timeout: 600}
"""


@contextlib.asynccontextmanager
async def https_server(front: Front, folder: Path) -> AsyncIterator[tuple[str, Path]]:
    cert, key, _ = self_signed(folder, ["127.0.0.1"])
    config = uvicorn.Config(
        front.app,
        host="127.0.0.1",
        port=0,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(600):
        if server.started:
            break
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}", cert
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def _cli(*args: str, stdin: str | None = None, env: dict[str, str]) -> tuple[int, str]:
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, list(args), input=stdin, env={"COLUMNS": "200", **env}
    )
    return result.exit_code, result.output


@pytest.fixture
async def ldap_front(tmp_path: Path) -> AsyncIterator[Front]:
    with running_directory(tmp_path / "ldap") as directory:
        front, _ = await start_front(tmp_path, ldap=ldap_settings(directory.url))
        try:
            yield front
        finally:
            await stop_front(front)


async def test_login_then_verbs_through_the_server(ldap_front: Front, tmp_path: Path) -> None:
    front = ldap_front
    await front.apply(application())
    sessions = tmp_path / "home" / "sessions.json"
    env = {"MILKYWAY_SESSIONS": str(sessions)}
    async with https_server(front, tmp_path / "tls") as (url, cert):
        code, out = await _cli(
            "login",
            "--server",
            url,
            "-u",
            "alice",
            "--password-stdin",
            "--ca-file",
            str(cert),
            stdin="wrong-password\n",
            env=env,
        )
        assert code == 1 and "sign-in refused (401)" in out
        assert not sessions.exists()
        code, out = await _cli(
            "login",
            "--server",
            url,
            "-u",
            "alice",
            "--password-stdin",
            "--ca-file",
            str(cert),
            stdin="alice-pw-1\n",
            env=env,
        )
        assert code == 0, out
        assert "signed in to" in out and "as alice (team-a)" in out
        assert stat.S_IMODE(sessions.stat().st_mode) == 0o600
        assert "alice-pw-1" not in sessions.read_text()

        code, out = await _cli(
            "scale",
            "stream1",
            "kafka1",
            "--zone",
            "phx",
            "--size",
            "4",
            "-n",
            "team-a",
            "--server",
            url,
            env=env,
        )
        assert code == 0, out
        assert "kafka1: zone phx size 3 -> 4" in out
        stored = (await front.admin.get(APPLICATION, "stream1", namespace="team-a")).to_dict()
        assert stored["spec"]["components"][1]["regions"][0]["zones"][0]["size"] == 4
        # alice is an editor, not an admin: deleting is refused by RBAC, through the server
        code, out = await _cli("delete", "stream1", "-n", "team-a", "--server", url, env=env)
        assert code == 1 and "cannot delete" in out
        assert await front.admin.get(APPLICATION, "stream1", namespace="team-a")
    actions = [(r["actor"], r["action"], r["decision"]) for r in front.state.audit.search()]
    assert ("alice", "scale", "allowed") in actions
    assert ("alice", "delete_application", "denied") in actions
    assert ("alice", "login", "unauthenticated") in actions


async def test_approvals_through_the_server_carry_the_proven_identity(
    ldap_front: Front, tmp_path: Path
) -> None:
    front = ldap_front
    store = KubeStore(front.admin, "team-a")
    run = new_run(Catalog(load_flows(GATED)), None, "gated", name="change-1", namespace="team-a")
    waiting = NodeStatus(path="confirm", name="confirm", kind="approval", phase="Waiting")
    run = run.model_copy(
        update={"status": run.status.model_copy(update={"nodes": {"confirm": waiting}})}
    )
    await store.create(run)
    sessions = tmp_path / "sessions.json"
    env = {"MILKYWAY_SESSIONS": str(sessions)}
    async with https_server(front, tmp_path / "tls") as (url, cert):
        code, out = await _cli(
            "login",
            "--server",
            url,
            "-u",
            "carol",
            "--password-stdin",
            "--ca-file",
            str(cert),
            stdin="carol-pw-3\n",
            env=env,
        )
        assert code == 0, out
        code, out = await _cli(
            "flow",
            "approve",
            "change-1",
            "confirm",
            "-n",
            "team-a",
            "--server",
            url,
            "--as",
            "bob",
            env=env,
        )
        assert code != 0 and "drop --as" in out
        code, out = await _cli(
            "flow",
            "approve",
            "change-1",
            "confirm",
            "-n",
            "team-a",
            "--server",
            url,
            "--reason",
            "looks good",
            env=env,
        )
        assert code == 0, out
        assert "approve of confirm requested" in out
    requests = (await store.get("change-1")).spec.requests
    assert [(r.op, r.actor, sorted(r.groups), r.reason) for r in requests] == [
        ("approve", "carol", ["platform", "team-a"], "looks good")
    ]
    assert json.loads(sessions.read_text())[url]["user"] == "carol"


async def test_login_makes_the_server_the_default_until_logout(
    ldap_front: Front, tmp_path: Path
) -> None:
    front = ldap_front
    await front.apply(application())
    sessions = tmp_path / "sessions.json"
    missing = str(tmp_path / "no-kubeconfig")
    env = {"MILKYWAY_SESSIONS": str(sessions)}
    async with https_server(front, tmp_path / "tls") as (url, cert):
        code, out = await _cli(
            "login",
            "--server",
            url,
            "-u",
            "alice",
            "--password-stdin",
            "--ca-file",
            str(cert),
            stdin="alice-pw-1\n",
            env=env,
        )
        assert code == 0 and "commands now go through" in out, out
        # No --server and no cluster credentials: both go through the signed-in server.
        code, out = await _cli(
            "get", "-n", "team-a", "-o", "json", "--kubeconfig", missing, env=env
        )
        assert code == 0, out
        assert [a["metadata"]["name"] for a in json.loads(out)] == ["stream1"]
        code, out = await _cli(
            "scale", "stream1", "kafka1", "--zone", "phx", "--size", "4", "-n", "team-a",
            "--kubeconfig", missing, env=env,
        )  # fmt: skip
        assert code == 0 and "size 3 -> 4" in out, out
        # --server '' talks to the cluster directly (here: no kubeconfig, so it says so).
        code, out = await _cli(
            "get", "-n", "team-a", "--server", "", "--kubeconfig", missing, env=env
        )
        assert code == 1 and "no-kubeconfig" in out, out
        code, out = await _cli("logout", env=env)
        assert code == 0 and f"signed out of {url}" in out, out
        assert json.loads(sessions.read_text()) == {}
        code, out = await _cli("get", "-n", "team-a", "--kubeconfig", missing, env=env)
        assert code == 1 and "no-kubeconfig" in out, out
        code, out = await _cli("logout", env=env)
        assert code == 1 and "not signed in" in out
    actions = [(r["actor"], r["action"]) for r in front.state.audit.search()]
    assert ("alice", "list_applications") in actions and ("alice", "scale") in actions

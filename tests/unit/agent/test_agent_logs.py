"""The agent serves declared log files only, and tails without reading a file whole."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from milkyway.agent.logs import LogAccessError, resolve, tail
from milkyway.model.agent_spec import AgentLogSource

from .agent_fixtures import running_agent


def _layout(tmp_path: Path) -> dict[str, object]:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "zookeeper.log").write_text(
        "2026-12-07 03:00:00,001 [myid:1] INFO starting\n"
        "2026-12-07 03:05:00,002 [myid:1] INFO serving\n"
        "  continuation of the line above\n"
        "2026-12-07 03:10:00,003 [myid:1] WARN slow fsync\n"
    )
    (logs / "gc.log").write_text("gc 1\ngc 2\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n")
    os.symlink(secret, logs / "evil.log")
    (tmp_path / "audit.log").write_text("a\nb\n")
    return {
        "logs": [
            {"name": "server", "directory": str(logs)},
            {"name": "audit", "path": str(tmp_path / "audit.log")},
        ]
    }


@pytest.mark.parametrize(
    ("name", "status", "words"),
    [
        ("server/../secret.txt", 400, "'..'"),
        ("../secret.txt", 400, "'..'"),
        ("server/evil.log", 403, "outside"),
        ("server//zookeeper.log", 400, "log name"),
        ("/etc/passwd", 400, "log name"),
        ("server/a/b", 400, "log name"),
        ("kernel", 404, "not declared"),
        ("audit/x", 400, "one file"),
        ("server", 400, "directory"),
        ("server/missing.log", 404, "does not exist"),
    ],
)
async def test_log_requests_outside_the_declaration_are_refused(
    tmp_path: Path, name: str, status: int, words: str
) -> None:
    async with running_agent(tmp_path, _layout(tmp_path)) as agent:
        response = await agent.client.get("/v1/logs", params={"file": name})
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert "hunter2" not in response.text


async def test_a_declared_file_that_became_a_link_out_is_refused(tmp_path: Path) -> None:
    spec = _layout(tmp_path)
    audit = tmp_path / "audit.log"
    audit.unlink()
    os.symlink(tmp_path / "secret.txt", audit)
    async with running_agent(tmp_path, spec) as agent:
        response = await agent.client.get("/v1/logs", params={"file": "audit"})
    assert response.status_code == 403 and "hunter2" not in response.text


async def test_tail_since_and_listing(tmp_path: Path) -> None:
    async with running_agent(tmp_path, _layout(tmp_path)) as agent:
        listing = (await agent.client.get("/v1/logs")).json()["files"]
        last = await agent.client.get(
            "/v1/logs", params={"file": "server/zookeeper.log", "tail": 2}
        )
        since = await agent.client.get(
            "/v1/logs", params={"file": "server/zookeeper.log", "since": "2026-12-07T03:04:00Z"}
        )
        bad = await agent.client.get("/v1/logs", params={"file": "audit", "tail": "ten"})
    names = {item["file"] for item in listing}
    assert names == {"server/zookeeper.log", "server/gc.log", "audit"}, "the link out is not listed"
    assert (
        last.text
        == "  continuation of the line above\n2026-12-07 03:10:00,003 [myid:1] WARN slow fsync\n"
    )
    assert since.text.splitlines() == [
        "2026-12-07 03:05:00,002 [myid:1] INFO serving",
        "  continuation of the line above",
        "2026-12-07 03:10:00,003 [myid:1] WARN slow fsync",
    ]
    assert bad.status_code == 400 and "tail='ten'" in bad.json()["detail"]


async def test_follow_streams_new_lines_across_rotation(tmp_path: Path) -> None:
    spec = _layout(tmp_path)
    log = tmp_path / "logs" / "gc.log"
    async with running_agent(tmp_path, spec) as agent:
        received: list[str] = []

        async def read() -> None:
            params = {"file": "server/gc.log", "tail": 1, "follow": "true"}
            async with agent.client.stream("GET", "/v1/logs", params=params) as response:
                async for line in response.aiter_lines():
                    received.append(line)
                    if line == "after rotation":
                        return

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.5)
        with log.open("a") as handle:
            handle.write("gc 3\n")
        await asyncio.sleep(0.6)
        log.rename(log.with_suffix(".1"))
        log.write_text("after rotation\n")
        async with asyncio.timeout(10):
            await reader
    assert received == ["gc 2", "gc 3", "after rotation"]


def test_tail_of_a_large_file_reads_only_its_end(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    line = b"2026-12-07 03:00:00,000 INFO " + b"x" * 70 + b"\n"
    with path.open("wb") as handle:
        for _ in range(40):
            handle.write(line * 5_000)
    reads: list[int] = []
    original = Path.open

    def counting_open(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        handle = original(self, *args, **kwargs)  # type: ignore[call-overload]
        inner_read = handle.read

        def read(size: int = -1) -> bytes:
            data = inner_read(size)
            reads.append(len(data))
            return data

        handle.read = read
        return handle

    Path.open = counting_open  # type: ignore[method-assign]
    try:
        lines = tail(path, 10)
    finally:
        Path.open = original  # type: ignore[method-assign]
    assert len(lines) == 10 and all(item == line.rstrip(b"\n") for item in lines)
    assert sum(reads) <= 64 * 1024, f"read {sum(reads)} bytes of a {path.stat().st_size}-byte file"


def test_resolve_refuses_sources_with_dotdot() -> None:
    with pytest.raises(ValueError, match=r"'\.\.' is not allowed"):
        AgentLogSource(name="x", directory="/var/log/../../etc")
    with pytest.raises(LogAccessError):
        resolve([], "x")

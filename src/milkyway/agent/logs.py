"""Serving the declared log files: name resolution that cannot escape, tails that read
from the end, and follows that survive rotation.

A request names a declared source, never a path: ``server`` for a source with ``path``,
``server/zookeeper.log`` for a file directly inside a source's ``directory``. Whatever the
name, the file's real path (symlinks resolved) must stay the declared file or inside the
declared directory, so a symlink planted in the log directory cannot expose other files.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from milkyway.model.agent_spec import AgentLogSource

BLOCK = 64 * 1024
MAX_TAIL_LINES = 100_000
_TIMESTAMP = re.compile(
    rb"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?"
)


class LogAccessError(Exception):
    """A log request that is refused; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def resolve(sources: Iterable[AgentLogSource], name: str) -> Path:
    """The real path of the log file ``name`` (``SOURCE`` or ``SOURCE/FILE``)."""
    if not name or "\x00" in name or "\\" in name:
        raise LogAccessError(400, f"file {name!r} is not a log name; use SOURCE or SOURCE/FILE")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts) or len(parts) > 2:
        raise LogAccessError(
            400, f"file {name!r} is not a log name; use SOURCE or SOURCE/FILE without '..'"
        )
    by_name = {source.name: source for source in sources}
    source = by_name.get(parts[0])
    if source is None:
        known = ", ".join(sorted(by_name)) or "none"
        raise LogAccessError(404, f"log source {parts[0]!r} is not declared (declared: {known})")
    if source.path is not None:
        if len(parts) != 1:
            raise LogAccessError(
                400, f"log source {source.name!r} is one file; use file={source.name}"
            )
        declared = Path(source.path)
        real = Path(os.path.realpath(declared))
        if real != Path(os.path.realpath(declared.parent)) / declared.name:
            raise LogAccessError(403, f"log file {source.path} is a link to {real}; refused")
        return real
    assert source.directory is not None
    if len(parts) != 2:
        raise LogAccessError(
            400, f"log source {source.name!r} is a directory; use file={source.name}/FILE"
        )
    directory = Path(os.path.realpath(source.directory))
    real = Path(os.path.realpath(directory / parts[1]))
    if real.parent != directory:
        raise LogAccessError(403, f"{name} leads outside {source.directory}; refused")
    return real


def list_files(sources: Iterable[AgentLogSource]) -> list[dict[str, object]]:
    """Every log file a client may ask for, with its size."""
    files: list[dict[str, object]] = []
    for source in sources:
        names: list[str] = []
        if source.path is not None:
            names = [source.name]
        elif source.directory is not None and os.path.isdir(source.directory):
            names = sorted(
                f"{source.name}/{entry.name}"
                for entry in os.scandir(source.directory)
                if entry.is_file()
            )
        for name in names:
            try:
                size = resolve([source], name).stat().st_size
            except (LogAccessError, OSError):
                continue
            files.append({"file": name, "size": size})
    return files


def parse_since(value: str) -> datetime:
    """``since`` as RFC 3339 or as a duration back from now (``90s``, ``5m``, ``2h``)."""
    match = re.fullmatch(r"(\d+)([smh])", value)
    if match:
        seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]
        return datetime.fromtimestamp(datetime.now(UTC).timestamp() - seconds, UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise LogAccessError(400, f"since={value!r} is neither RFC 3339 nor 10s/5m/2h") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def line_time(line: bytes) -> datetime | None:
    """The timestamp a log line starts with (log4j, RFC 3339, etcd's JSON ``ts`` aside)."""
    match = _TIMESTAMP.match(line)
    if not match:
        return None
    fraction = (match.group(3) or b"0").decode()[:6].ljust(6, "0")
    zone = match.group(4)
    text = f"{match.group(1).decode()}T{match.group(2).decode()}.{fraction}"
    if zone:
        text += "+00:00" if zone == b"Z" else zone.decode()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def tail(path: Path, lines: int | None, since: datetime | None = None) -> list[bytes]:
    """The last ``lines`` lines of ``path`` (all of them if None), only those at or after
    ``since`` — read backwards block by block, so a huge file costs what is returned."""
    limit = MAX_TAIL_LINES if lines is None else min(lines, MAX_TAIL_LINES)
    collected: list[bytes] = []
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        position = handle.tell()
        partial = b""
        first_block = True
        while position > 0:
            step = min(BLOCK, position)
            position -= step
            handle.seek(position)
            pieces = (handle.read(step) + partial).split(b"\n")
            if first_block and pieces[-1] == b"":
                pieces.pop()
            first_block = False
            partial = pieces.pop(0) if position > 0 else b""
            if position == 0 and not pieces:
                break
            for line in reversed(pieces):
                if _keep(line, since) is False or len(collected) >= limit:
                    collected.reverse()
                    return collected
                collected.append(line)
        if partial and len(collected) < limit and _keep(partial, since) is not False:
            collected.append(partial)
    collected.reverse()
    return collected[-limit:]


def _keep(line: bytes, since: datetime | None) -> bool | None:
    """False once a line is older than ``since``; lines without a time are kept."""
    if since is None:
        return True
    moment = line_time(line)
    return None if moment is None else moment >= since


async def follow(
    path: Path, gone: Callable[[], bool], poll_seconds: float = 0.25
) -> AsyncIterator[bytes]:
    """New complete lines of ``path`` as they are written, across rotation (a new file at
    the same name is read from its start), until ``gone()`` says the reader left."""
    handle = path.open("rb")
    try:
        handle.seek(0, os.SEEK_END)
        inode = os.fstat(handle.fileno()).st_ino
        pending = b""
        while True:
            data = handle.read(BLOCK)
            if data:
                pending += data
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    yield line
                continue
            if gone():
                return
            await asyncio.sleep(poll_seconds)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                continue
            if current.st_ino != inode or current.st_size < handle.tell():
                handle.close()
                handle = path.open("rb")
                inode = os.fstat(handle.fileno()).st_ino
                pending = b""
    finally:
        handle.close()

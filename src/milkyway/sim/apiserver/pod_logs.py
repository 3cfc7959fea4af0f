"""Container logs as a node keeps them, and the ``pods/log`` options that read them.

A simulated kubelet writes a container's output here (each line with the moment it was
written); a container that restarts keeps its last terminated instance's log as
"previous", as a kubelet keeps one rotated log per container. Followers (``kubectl logs
-f``) are woken by every write and end when the container stops, the pod goes or the
client leaves.

Process-backed containers have real log files instead; :func:`read_log_file` reads them
in the kubelet's CRI format (``<RFC3339Nano> <stream> <P|F> <text>``) or as plain lines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from milkyway.sim.apiserver import errors

LOG_LINES = 10_000
_CRI_LINE = re.compile(r"^(\S+Z) (stdout|stderr) ([PF]) ?(.*)$")


@dataclass(frozen=True)
class LogLine:
    time: datetime | None
    text: str
    partial: bool = False


@dataclass
class ContainerLog:
    """The current instance's lines, the previous instance's, and whether it has stopped."""

    current: list[LogLine] = field(default_factory=list)
    previous: list[LogLine] | None = None
    stopped: bool = False
    written: int = 0  # lines ever written to this container; followers count from it
    instance: int = 0  # bumped each time an instance stops
    written_at_stop: int = 0

    def since(self, seen: int) -> list[LogLine]:
        """The current lines written after the first ``seen`` (rotated ones are lost)."""
        fresh = min(self.written - seen, len(self.current))
        return self.current[-fresh:] if fresh > 0 else []

    def ended_since(self, seen: int) -> list[LogLine]:
        """The last instance's lines written after the first ``seen``."""
        fresh = min(self.written_at_stop - seen, len(self.previous or []))
        return (self.previous or [])[-fresh:] if fresh > 0 else []


Listener = Callable[[tuple[str, str]], None]


class PodLogs:
    """Every container log of one cluster, keyed by (namespace, pod) then container."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._pods: dict[tuple[str, str], dict[str, ContainerLog]] = {}
        self._listeners: list[Listener] = []

    def container(self, namespace: str, pod: str, container: str) -> ContainerLog | None:
        return self._pods.get((namespace, pod), {}).get(container)

    def write(self, namespace: str, pod: str, container: str, text: str) -> None:
        """Append output; the oldest lines beyond ``LOG_LINES`` are dropped, as a node
        rotates its logs."""
        log = self._pods.setdefault((namespace, pod), {}).setdefault(container, ContainerLog())
        now = self._clock()
        log.stopped = False
        lines = [LogLine(now, line) for line in text.splitlines()]
        log.current.extend(lines)
        log.written += len(lines)
        if len(log.current) > LOG_LINES:
            del log.current[: len(log.current) - LOG_LINES]
        self._notify((namespace, pod))

    def stop(self, namespace: str, pod: str, container: str) -> None:
        """The container's instance ended: its lines become the previous instance's and
        followers of it finish."""
        log = self._pods.setdefault((namespace, pod), {}).setdefault(container, ContainerLog())
        log.previous, log.current, log.stopped = log.current, [], True
        log.instance += 1
        log.written_at_stop = log.written
        self._notify((namespace, pod))

    def drop(self, namespace: str, pod: str) -> None:
        if self._pods.pop((namespace, pod), None) is not None:
            self._notify((namespace, pod))

    @property
    def followers(self) -> int:
        """How many readers are following a log now (each open ``follow=true``)."""
        return len(self._listeners)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self, key: tuple[str, str]) -> None:
        for listener in list(self._listeners):
            listener(key)


@dataclass(frozen=True)
class LogOptions:
    """The query of a ``pods/log`` request, checked as the real server checks it."""

    container: str | None = None
    follow: bool = False
    previous: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: datetime | None = None
    timestamps: bool = False
    limit_bytes: int | None = None

    @classmethod
    def from_query(cls, query: dict[str, str]) -> LogOptions:
        since_time = None
        if query.get("sinceTime"):
            since_time = _parse_time(query["sinceTime"])
        options = cls(
            container=query.get("container") or None,
            follow=_flag(query, "follow"),
            previous=_flag(query, "previous"),
            tail_lines=_number(query, "tailLines"),
            since_seconds=_number(query, "sinceSeconds"),
            since_time=since_time,
            timestamps=_flag(query, "timestamps"),
            limit_bytes=_number(query, "limitBytes"),
        )
        if options.since_seconds is not None and options.since_time is not None:
            raise errors.bad_request("at most one of sinceTime or sinceSeconds may be specified")
        if options.since_seconds is not None and options.since_seconds < 1:
            raise errors.bad_request("sinceSeconds: Invalid value: must be greater than 0")
        if options.tail_lines is not None and options.tail_lines < 0:
            raise errors.bad_request("tailLines: Invalid value: must be greater than or equal to 0")
        if options.limit_bytes is not None and options.limit_bytes < 1:
            raise errors.bad_request("limitBytes: Invalid value: must be greater than 0")
        return options

    def since(self, now: datetime) -> datetime | None:
        if self.since_time is not None:
            return self.since_time
        if self.since_seconds is not None:
            return now - timedelta(seconds=self.since_seconds)
        return None

    def select(self, lines: list[LogLine], now: datetime) -> list[LogLine]:
        """The lines an initial read returns: ``since`` first, then ``tailLines``."""
        since = self.since(now)
        if since is not None:
            lines = [line for line in lines if line.time is None or line.time >= since]
        if self.tail_lines is not None:
            lines = lines[-self.tail_lines :] if self.tail_lines > 0 else []
        return lines

    def render(self, line: LogLine) -> bytes:
        text = line.text if line.partial else line.text + "\n"
        if self.timestamps:
            when = line.time or datetime.fromtimestamp(0, UTC)
            text = f"{format_timestamp(when)} {text}"
        return text.encode()


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 with nanoseconds, as the kubelet prefixes lines for ``timestamps=true``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 1000:09d}Z"


def read_log_file(path: Path, offset: int = 0) -> tuple[list[LogLine], int]:
    """Whole lines of a log file from ``offset``; returns them and the offset after them.

    A plain line records no time of its own: it gets the file's modification time, which
    for a followed log is within a poll of when the line was written, and for a first
    read is the time of the latest line (so ``sinceSeconds`` keeps or drops such a file's
    older lines together).
    """
    try:
        with path.open("rb") as handle:
            modified = datetime.fromtimestamp(os.fstat(handle.fileno()).st_mtime, UTC)
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    lines = [
        parse_log_line(raw.decode(errors="replace"), modified) for raw in data[:end].split(b"\n")
    ]
    return lines, offset + end + 1


def parse_log_line(raw: str, fallback: datetime | None = None) -> LogLine:
    """A CRI log line (``<RFC3339Nano> <stream> <P|F> <text>``) or a plain one, which
    gets ``fallback`` as its time."""
    match = _CRI_LINE.match(raw)
    if match is None:
        return LogLine(fallback, raw)
    try:
        when = _parse_time(match.group(1))
    except errors.ApiError:
        return LogLine(fallback, raw)
    return LogLine(when, match.group(4), partial=match.group(3) == "P")


def _parse_time(value: str) -> datetime:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d:\d\d)$", text)
    if match is None:
        raise errors.bad_request(f'invalid time "{value}": use RFC 3339, e.g. 2024-01-02T03:04:05Z')
    fraction = (match.group(2) or "")[:7].ljust(7, "0") if match.group(2) else ""
    try:
        return datetime.fromisoformat(match.group(1) + fraction + match.group(3))
    except ValueError:
        raise errors.bad_request(
            f'invalid time "{value}": use RFC 3339, e.g. 2024-01-02T03:04:05Z'
        ) from None


def _flag(query: dict[str, str], key: str) -> bool:
    return query.get(key, "") in ("1", "true", "True")


def _number(query: dict[str, str], key: str) -> int | None:
    raw = query.get(key)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f'invalid {key} "{raw}": must be an integer') from None

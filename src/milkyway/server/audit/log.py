"""Appending to and checking the hash-chained audit log.

Each row carries the SHA-256 of the previous row's hash and its own contents (its id
included), so editing a row breaks its own hash, deleting one breaks the next row's link,
and swapping two breaks both. Appends are serialized across server replicas: an advisory
transaction lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite. A truncated tail is only
visible against a head hash recorded earlier: ``verify`` returns the head so it can be kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, select, text

from milkyway.server.audit.schema import audit_records

GENESIS = "0" * 64
_ADVISORY_KEY = 0x4D494C4B  # "MILK": one lock id for every replica's appends
_BATCH = 256


@dataclass
class AuditRecord:
    """One request (or one thing a request caused), as written to the log."""

    request_id: str
    actor: str
    action: str
    target: str
    decision: str  # allowed | denied | unauthenticated | error
    result: int
    groups: list[str] = field(default_factory=list)
    auth_method: str = ""
    source: str = ""
    detail: str = ""
    at: str = ""
    id: int = 0
    prev_hash: str = ""
    hash: str = ""


_HASHED = (
    "id",
    "at",
    "request_id",
    "actor",
    "groups",
    "auth_method",
    "source",
    "action",
    "target",
    "decision",
    "result",
    "detail",
)


def record_hash(row: Mapping[str, Any], prev_hash: str) -> str:
    body = {key: row[key] for key in _HASHED}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class Finding:
    """A place where the chain does not hold, with what is wrong there."""

    id: int
    problem: str


def verify_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[list[Finding], str, int]:
    """(findings, head hash, rows checked) for rows in id order."""
    findings: list[Finding] = []
    prev_hash, prev_id, count = GENESIS, 0, 0
    for row in rows:
        count += 1
        if row["id"] != prev_id + 1:
            findings.append(
                Finding(row["id"], f"row ids jump from {prev_id} to {row['id']}: rows are missing")
            )
        if row["prev_hash"] != prev_hash:
            findings.append(
                Finding(
                    row["id"],
                    "its link to the previous row does not match (a row before it "
                    "was deleted, swapped or edited)",
                )
            )
        if record_hash(row, row["prev_hash"]) != row["hash"]:
            findings.append(Finding(row["id"], "its contents do not match its hash (edited)"))
        prev_hash, prev_id = row["hash"], row["id"]
    return findings, prev_hash, count


def _row(record: AuditRecord) -> dict[str, Any]:
    out = asdict(record)
    out["groups"] = json.dumps(sorted(record.groups))
    return out


class AuditLog:
    """The audit database at ``url`` (``sqlite:///PATH`` or ``postgresql+psycopg://...``),
    migrated to the newest schema on open."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, future=True)
        self._sqlite = self.engine.dialect.name == "sqlite"
        if self._sqlite:
            self._sqlite_transactions(self.engine)
        self._lock = threading.Lock()
        self._queue: asyncio.Queue[Any] | None = None
        self._queue_loop: asyncio.AbstractEventLoop | None = None
        self._writer: asyncio.Task[None] | None = None
        self.migrate()

    @staticmethod
    def _sqlite_transactions(engine: Engine) -> None:
        """Let SQLAlchemy, not the sqlite3 module, open transactions, and open them with
        BEGIN IMMEDIATE so two processes never read the same head."""

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA busy_timeout = 30000")
            # WAL: readers never block the writer, and a commit is one append to the log
            dbapi_connection.execute("PRAGMA journal_mode = WAL")
            dbapi_connection.execute("PRAGMA synchronous = NORMAL")

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    def migrate(self) -> None:
        config = Config()
        config.set_main_option(
            "script_location", str(resources.files("milkyway.server.audit") / "migrations")
        )
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def append_sync(self, record: AuditRecord) -> AuditRecord:
        return self.append_many_sync([record])[0]

    def append_many_sync(self, records: list[AuditRecord]) -> list[AuditRecord]:
        """Chain and insert ``records`` in one transaction (one commit for all)."""
        with self._lock, self.engine.begin() as connection:
            self._serialize(connection)
            return self._insert(connection, records)

    def append_new_sync(self, record: AuditRecord) -> AuditRecord | None:
        """Append ``record`` unless a row with its request id, action and target is there
        already (written by this replica or another, before or after a restart): for
        records of what the server observes rather than what it is asked. ``None`` when
        it was there."""
        with self._lock, self.engine.begin() as connection:
            self._serialize(connection)
            found = connection.execute(
                select(audit_records.c.id)
                .where(audit_records.c.request_id == record.request_id)
                .where(audit_records.c.action == record.action)
                .where(audit_records.c.target == record.target)
                .limit(1)
            ).first()
            if found is not None:
                return None
            return self._insert(connection, [record])[0]

    def _serialize(self, connection: Any) -> None:
        """Hold the chain's lock for the transaction (SQLite's BEGIN IMMEDIATE holds it)."""
        if not self._sqlite:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY})

    def _insert(self, connection: Any, records: list[AuditRecord]) -> list[AuditRecord]:
        """Chain ``records`` to the newest row and insert them (the lock is held)."""
        last = connection.execute(
            select(audit_records.c.id, audit_records.c.hash)
            .order_by(audit_records.c.id.desc())
            .limit(1)
        ).first()
        next_id, prev_hash = (last.id if last else 0) + 1, last.hash if last else GENESIS
        rows = []
        for record in records:
            record.id, record.prev_hash = next_id, prev_hash
            record.at = record.at or dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
            row = _row(record)
            record.hash = row["hash"] = record_hash(row, record.prev_hash)
            rows.append(row)
            next_id, prev_hash = next_id + 1, record.hash
        connection.execute(audit_records.insert(), rows)
        return records

    async def append(self, record: AuditRecord) -> AuditRecord:
        """Append and return once committed. Records of concurrent requests are written
        together, one transaction per batch (group commit)."""
        loop = asyncio.get_running_loop()
        if self._queue is None or self._queue_loop is not loop:
            self._queue = asyncio.Queue()
            self._queue_loop = loop
            self._writer = loop.create_task(self._write_batches(self._queue))
        done: asyncio.Future[AuditRecord] = loop.create_future()
        self._queue.put_nowait((record, done))
        return await done

    async def _write_batches(self, queue: asyncio.Queue[Any]) -> None:
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < _BATCH:
                batch.append(queue.get_nowait())
            try:
                await asyncio.to_thread(self.append_many_sync, [r for r, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for record, done in batch:
                if not done.done():
                    done.set_result(record)

    def search(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        decision: str | None = None,
        request_id: str | None = None,
        target: str | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        query = select(audit_records).where(audit_records.c.id > after_id)
        for column, value in (
            (audit_records.c.actor, actor),
            (audit_records.c.action, action),
            (audit_records.c.decision, decision),
            (audit_records.c.request_id, request_id),
        ):
            if value:
                query = query.where(column == value)
        if target:
            query = query.where(audit_records.c.target.contains(target))
        query = query.order_by(audit_records.c.id).limit(limit)
        with self.engine.connect() as connection:
            rows = [dict(r._mapping) for r in connection.execute(query)]
        for row in rows:
            row["groups"] = json.loads(row["groups"])
        return rows

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(audit_records)).scalar())

    def verify(self) -> tuple[list[Finding], str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(audit_records).order_by(audit_records.c.id))
            return verify_rows(dict(r._mapping) for r in rows)

    def close(self) -> None:
        if self._writer is not None and not self._writer.done():
            with contextlib.suppress(RuntimeError):  # its loop may be closed already
                self._writer.cancel()
        self.engine.dispose()

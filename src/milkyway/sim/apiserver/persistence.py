"""Optional SQLite persistence: objects and the revision counter survive a restart.

Writes are recorded as they commit and flushed in batches (every ``interval`` seconds and
on close), so persistence costs one dict assignment per write on the hot path. A crash
can lose the last interval's writes; a clean shutdown loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from milkyway.sim.apiserver.store import DELETED, Event, ResourceKey

if TYPE_CHECKING:
    from milkyway.sim.apiserver.api import ClusterAPI

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    grp TEXT NOT NULL, plural TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY (grp, plural, namespace, name));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SqlitePersistence:
    """Mirrors one cluster's store into a SQLite file."""

    def __init__(self, path: str | Path, *, interval: float = 0.2) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.interval = interval
        self._conn = sqlite3.connect(self.path)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._pending: dict[tuple[str, str, str, str], dict[str, Any] | None] = {}
        self._revision: int | None = None
        self._task: asyncio.Task[None] | None = None

    def load(self, api: ClusterAPI) -> int:
        """Put every saved object back into ``api``'s store; returns how many were loaded."""
        rows = self._conn.execute("SELECT grp, plural, data FROM objects").fetchall()
        for group, plural, data in rows:
            api.store.load((group, plural), orjson.loads(data))
        saved = self._conn.execute("SELECT value FROM meta WHERE key='revision'").fetchone()
        if saved is not None:
            api.store.revision = max(api.store.revision, int(saved[0]))
        api.store.reset_history()
        api.restore_crds()
        return len(rows)

    def attach(self, api: ClusterAPI) -> None:
        api.store.listeners.append(self._record)

    def _record(self, event: Event) -> None:
        key: ResourceKey = event.key
        md = event.object["metadata"]
        row = (key[0], key[1], md.get("namespace", ""), md["name"])
        self._pending[row] = None if event.type == DELETED else event.object
        self._revision = event.revision

    def flush(self) -> None:
        if not self._pending and self._revision is None:
            return
        pending, self._pending = self._pending, {}
        upserts = [(*row, orjson.dumps(obj)) for row, obj in pending.items() if obj is not None]
        deletes = [row for row, obj in pending.items() if obj is None]
        with self._conn:
            if upserts:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO objects (grp, plural, namespace, name, data) "
                    "VALUES (?, ?, ?, ?, ?)",
                    upserts,
                )
            if deletes:
                self._conn.executemany(
                    "DELETE FROM objects WHERE grp=? AND plural=? AND namespace=? AND name=?",
                    deletes,
                )
            if self._revision is not None:
                self._conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('revision', ?)",
                    (str(self._revision),),
                )
        self._revision = None

    def start(self) -> None:
        """Flush periodically from the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()
        self._conn.close()

"""A throw-away PostgreSQL server (Debian's postgresql) on a free local port.

initdb and the server run as the ``postgres`` system user (PostgreSQL refuses root), in a
fresh temporary folder that is removed at the end."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(*args: str) -> list[str]:
    if os.geteuid() != 0:
        return list(args)
    return ["runuser", "-u", "postgres", "--", *args]


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Yields a SQLAlchemy URL of a fresh, empty database."""
    if not (BIN / "initdb").exists():
        pytest.fail("PostgreSQL is not installed: apt-get install -y postgresql")
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("no postgres system user: apt-get install -y postgresql creates it")
    folder = Path(tempfile.mkdtemp(prefix="milkyway-pg-"))
    if os.geteuid() == 0:
        os.chown(folder, account.pw_uid, account.pw_gid)
    data = folder / "data"
    port = _free_port()
    try:
        subprocess.run(
            _as_postgres(str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"),
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        started = subprocess.run(
            _as_postgres(
                str(BIN / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(folder / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ),
            capture_output=True,
            timeout=120,
        )
        if started.returncode != 0:
            log = (folder / "log").read_text() if (folder / "log").exists() else ""
            pytest.fail(f"PostgreSQL did not start: {started.stderr.decode()} {log[-2000:]}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres(str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(folder, ignore_errors=True)

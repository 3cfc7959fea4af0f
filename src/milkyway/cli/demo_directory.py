"""The demo's throw-away LDAP directory: Debian's OpenLDAP ``slapd``, started in the demo's
own folder on a free local port, seeded with the demo's people and their groups, and
stopped (by its process) when the demo stops.

The passwords are new for every run and are printed by the demo; the server signs in
against this directory exactly as it would against a company's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

SLAPD = "/usr/sbin/slapd"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
SUFFIX = "dc=milkyway,dc=demo"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
ADMIN_DN = f"cn=admin,{SUFFIX}"
READER_DN = f"cn=milkyway-server,{SUFFIX}"
"""The account the server searches with (read-only)."""
PR_SET_PDEATHSIG = 1
INSTALL_HINT = "apt-get install -y slapd ldap-utils (or run the demo with --no-api)"


class DirectoryError(Exception):
    """The demo's directory cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class DemoUser:
    """A person of the demo: their group decides, through RoleBindings, what they may."""

    uid: str
    group: str
    may: str


@dataclass
class Directory:
    """A running directory and how to sign in against it."""

    url: str
    folder: Path
    bind_password: str
    passwords: dict[str, str] = field(default_factory=dict)
    pid: int = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_ldif(users: Sequence[DemoUser], passwords: dict[str, str], reader_password: str) -> str:
    """The directory's entries: the tree, the server's reader account, people, groups."""
    parts = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Milkyway demo\n"
        "dc: milkyway\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
        f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: milkyway-server\nuserPassword: {reader_password}\n",
    ]
    members: dict[str, list[str]] = {}
    for user in users:
        parts.append(
            f"dn: uid={user.uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {user.uid}\n"
            f"cn: {user.uid}\nsn: {user.uid}\nmail: {user.uid}@milkyway.demo\n"
            f"userPassword: {passwords[user.uid]}\n"
        )
        members.setdefault(user.group, []).append(f"uid={user.uid},{PEOPLE}")
    for group, dns in members.items():
        lines = "".join(f"member: {dn}\n" for dn in dns)
        parts.append(f"dn: cn={group},{GROUPS}\nobjectClass: groupOfNames\ncn: {group}\n{lines}")
    return "\n".join(parts)


def _config(folder: Path, admin_password: str) -> str:
    return "\n".join(
        [
            *(f"include /etc/ldap/schema/{schema}.schema" for schema in SCHEMAS),
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            f"pidfile {folder / 'slapd.pid'}",
            "database mdb",
            "maxsize 10485760",
            f'suffix "{SUFFIX}"',
            f'rootdn "{ADMIN_DN}"',
            f"rootpw {admin_password}",
            f"directory {folder / 'data'}",
            "access to attrs=userPassword by self write by anonymous auth by * none",
            "access to * by users read by * none",
            "",
        ]
    )


def _private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _prepare(folder: Path, admin_password: str) -> tuple[Path, BinaryIO]:
    """An empty folder (what an earlier run left there is removed) with the server's
    configuration; returns it and the log slapd writes to."""
    if not Path(SLAPD).exists() or shutil.which("ldapadd") is None:
        raise DirectoryError(f"OpenLDAP is not installed: {INSTALL_HINT}")
    _stop_left_over(folder)
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True, mode=0o700)
    conf = folder / "slapd.conf"
    _private(conf, _config(folder, admin_password))
    return conf, (folder / "slapd.log").open("wb")


def _stop_left_over(folder: Path) -> None:
    """Stop a slapd an earlier demo in ``folder`` left running (one killed outright)."""
    try:
        pid = int((folder / "slapd.pid").read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if command and command[0].endswith(b"slapd") and str(folder).encode() in b" ".join(command):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def _die_with_parent() -> None:
    """In the child before exec: the kernel stops slapd if the demo dies without cleanup."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-1500:]


async def start_directory(
    stack: contextlib.AsyncExitStack, folder: Path, users: Sequence[DemoUser]
) -> Directory:
    """A fresh directory in ``folder`` (what an earlier run left there is removed), seeded
    with ``users``; ``stack`` stops it."""
    admin_password = secrets.token_urlsafe(18)
    conf, log = _prepare(folder, admin_password)
    stack.callback(log.close)
    port = _free_port()
    url = f"ldap://127.0.0.1:{port}"
    process = await asyncio.create_subprocess_exec(
        SLAPD,
        "-d",
        "0",
        "-h",
        f"{url}/",
        "-f",
        str(conf),
        stdout=log,
        stderr=log,
        preexec_fn=_die_with_parent,
    )

    async def stop() -> None:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()

    stack.push_async_callback(stop)
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        if process.returncode is not None or time.monotonic() > deadline:
            tail = _tail(folder / "slapd.log")
            raise DirectoryError(f"slapd did not start on {url} (log {folder}/slapd.log): {tail}")
        await asyncio.sleep(0.05)
    passwords = {user.uid: secrets.token_urlsafe(9) for user in users}
    reader_password = secrets.token_urlsafe(18)
    password_file = folder / "admin.pw"
    _private(password_file, admin_password)
    seed = await asyncio.create_subprocess_exec(
        "ldapadd",
        "-x",
        "-H",
        url,
        "-D",
        ADMIN_DN,
        "-y",
        str(password_file),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(
        seed.communicate(seed_ldif(users, passwords, reader_password).encode()), 60
    )
    if seed.returncode != 0:
        raise DirectoryError(f"seeding the demo directory failed: {err.decode().strip()}")
    return Directory(url, folder, reader_password, passwords, process.pid)

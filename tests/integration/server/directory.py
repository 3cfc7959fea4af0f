"""A throw-away OpenLDAP directory (Debian's slapd) with the users and groups the server
tests sign in as. Started on a free local port, stopped (and its files removed) after."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SUFFIX = "dc=milkyway,dc=test"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "directory-admin-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SLAPD = "/usr/sbin/slapd"

# uid: (password, groups, disabled)
DIRECTORY_USERS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "alice": ("alice-pw-1", ("team-a",), False),
    "bob": ("bob-pw-2", ("team-b",), False),
    "carol": ("carol-pw-3", ("platform", "team-a"), False),
    "frank": ("frank-pw-4", ("team-a",), True),
}


@dataclass
class Directory:
    url: str
    folder: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ldif() -> str:
    parts = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
        "o: Milkyway\ndc: milkyway\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    groups: dict[str, list[str]] = {}
    for uid, (password, member_of, disabled) in DIRECTORY_USERS.items():
        entry = (
            f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
            f"sn: {uid}\nmail: {uid}@milkyway.test\nuserPassword: {password}\n"
        )
        if disabled:
            entry += "employeeType: disabled\n"
        parts.append(entry)
        for group in member_of:
            groups.setdefault(group, []).append(f"uid={uid},{PEOPLE}")
    for group, members in groups.items():
        lines = "".join(f"member: {m}\n" for m in members)
        parts.append(f"dn: cn={group},{GROUPS}\nobjectClass: groupOfNames\ncn: {group}\n{lines}")
    return "\n".join(parts)


@contextlib.contextmanager
def running_directory(folder: Path) -> Iterator[Directory]:
    if not Path(SLAPD).exists() or shutil.which("ldapadd") is None:
        pytest.fail("OpenLDAP is not installed: apt-get install -y slapd ldap-utils")
    data = folder / "data"
    data.mkdir(parents=True)
    conf = folder / "slapd.conf"
    conf.write_text(
        "\n".join(
            [
                *(
                    f"include /etc/ldap/schema/{s}.schema"
                    for s in ("core", "cosine", "inetorgperson", "nis")
                ),
                "modulepath /usr/lib/ldap",
                "moduleload back_mdb",
                f"pidfile {folder}/slapd.pid",
                "database mdb",
                "maxsize 10485760",
                f'suffix "{SUFFIX}"',
                f'rootdn "{ADMIN_DN}"',
                f"rootpw {ADMIN_PASSWORD}",
                f"directory {data}",
                "access to attrs=userPassword by self write by anonymous auth by * none",
                "access to * by * read",
                "",
            ]
        )
    )
    port = _free_port()
    url = f"ldap://127.0.0.1:{port}/"
    process = subprocess.Popen(
        [SLAPD, "-d", "0", "-h", url, "-f", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                err = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"slapd did not start on {url}: {err[-2000:]}")
            time.sleep(0.05)
        seed = subprocess.run(
            ["ldapadd", "-x", "-H", url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD],
            input=_ldif().encode(),
            capture_output=True,
            timeout=60,
        )
        if seed.returncode != 0:
            pytest.fail(f"seeding the directory failed: {seed.stderr.decode()}")
        yield Directory(url, folder)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

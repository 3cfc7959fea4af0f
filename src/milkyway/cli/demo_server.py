"""The demo's front door: ``milkyway server`` in the demo's process, over TLS, signing
people in against the demo's LDAP directory, acting as them on the management cluster,
whose RoleBindings give each demo person one of the shipped roles.

Everything it writes (certificate, audit database, directory) lives next to the demo's
kubeconfig; the demo's exit stack stops the server, then the directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from lightkube import AsyncClient, codecs

from milkyway.cli.demo_directory import (
    GROUPS,
    PEOPLE,
    READER_DN,
    DemoUser,
    Directory,
    start_directory,
)
from milkyway.server import ServerSettings, create_app
from milkyway.server.authn.ldap import LdapSettings
from milkyway.server.tls import self_signed

RBAC_DIR = Path(__file__).resolve().parents[3] / "deploy" / "rbac"
FIELD_MANAGER = "milkyway-demo"

DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("demo-admin", "demo-admins", "admin of milkyway and streaming; reads all audit"),
    DemoUser("demo-operator", "demo-operators", "edits and approves in milkyway; reads streaming"),
    DemoUser("demo-viewer", "demo-viewers", "reads milkyway"),
)

# (namespace or "" for cluster-wide, ClusterRole, group)
DEMO_BINDINGS: tuple[tuple[str, str, str], ...] = (
    ("milkyway", "milkyway-admin", "demo-admins"),
    ("streaming", "milkyway-admin", "demo-admins"),
    ("", "milkyway-auditor", "demo-admins"),
    ("milkyway", "milkyway-editor", "demo-operators"),
    ("milkyway", "milkyway-approver", "demo-operators"),
    ("streaming", "milkyway-viewer", "demo-operators"),
    ("milkyway", "milkyway-viewer", "demo-viewers"),
)


class DemoApiError(Exception):
    """The demo's server cannot start; the message says why."""


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the demo's event loop: the demo, not uvicorn, owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class DemoApi:
    """The running server and how to sign in to it."""

    url: str
    ca_file: Path
    audit_db: Path
    directory: Directory
    users: Sequence[DemoUser]

    def login_line(self, user: str) -> str:
        return f"milkyway login --server {self.url} -u {user} --ca-file {self.ca_file}"


def binding(namespace: str, role: str, group: str) -> dict[str, Any]:
    """A RoleBinding (a ClusterRoleBinding without ``namespace``) of ``role`` to ``group``."""
    metadata: dict[str, Any] = {"name": f"{role}-{group}"}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }


async def apply_rbac(client: AsyncClient) -> None:
    """The shipped roles (``deploy/rbac``) and the demo's bindings (server-side apply, so a
    demo restarted on a kept ``--data-dir`` converges)."""
    documents: list[dict[str, Any]] = []
    for path in sorted(RBAC_DIR.glob("*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    documents.extend(binding(*b) for b in DEMO_BINDINGS)
    for document in documents:
        await client.apply(codecs.from_dict(document), field_manager=FIELD_MANAGER, force=True)


def _check_free(port: int) -> None:
    """uvicorn exits the process when it cannot bind: refuse a taken port first."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise DemoApiError(
                f"--api-port {port}: 127.0.0.1:{port} is taken ({exc.strerror}); pick "
                "another port, or 0 for any free one"
            ) from None


async def start_api(
    stack: contextlib.AsyncExitStack,
    client: AsyncClient,
    kubeconfig: Path,
    context: str,
    *,
    port: int = 0,
    users: Sequence[DemoUser] = DEMO_USERS,
) -> DemoApi:
    """Start the directory, bind the roles, then serve on ``127.0.0.1:port`` (0: any
    free port); returns once the server accepts connections."""
    if port:
        _check_free(port)
    folder = kubeconfig.parent
    directory = await start_directory(stack, folder / "ldap", users)
    await apply_rbac(client)
    cert, key, _ = self_signed(folder / "tls", ["127.0.0.1", "localhost"])
    audit_db = folder / "audit.db"
    settings = ServerSettings(
        kubeconfig=kubeconfig,
        context=context,
        audit_url=f"sqlite:///{audit_db}",
        ldap=LdapSettings(
            url=directory.url,
            user_base=PEOPLE,
            group_base=GROUPS,
            bind_dn=READER_DN,
            bind_password=directory.bind_password,
        ),
    )
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
        log_config=None,
        access_log=False,
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(), name="milkyway-server")

    async def stop() -> None:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 30)

    stack.push_async_callback(stop)
    deadline = time.monotonic() + 60
    while not server.started:
        if task.done():
            error = None if task.cancelled() else task.exception()
            raise DemoApiError(f"milkyway server stopped while starting: {error!r}")
        if time.monotonic() > deadline:
            raise DemoApiError("milkyway server did not start within 60 s")
        await asyncio.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return DemoApi(f"https://127.0.0.1:{bound}", cert, audit_db, directory, users)


def sign_in_text(api: DemoApi) -> str:
    """What the demo prints: where the server is, who can sign in, and how."""
    width = max(len(u.uid) for u in api.users)
    lines = [
        f"server {api.url} (API /api/v1, docs {api.url}/docs); audit trail {api.audit_db}",
        f"LDAP directory {api.directory.url} (slapd, in {api.directory.folder}); people:",
    ]
    for user in api.users:
        password = api.directory.passwords[user.uid]
        lines.append(f"  {user.uid:<{width}}  password {password}  ({user.may})")
    lines.append("sign in (then milkyway get -n milkyway goes through the server):")
    example = api.users[1] if len(api.users) > 1 else api.users[0]
    lines.append(f"  {api.login_line(example.uid)}")
    return "\n".join(lines)

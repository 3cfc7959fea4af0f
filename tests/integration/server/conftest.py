"""A management cluster with RBAC on, Milkyway's CRDs and ClusterRoles, and the server
in front of it (acting through its own impersonating account), reached over ASGI."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from lightkube import AsyncClient, KubeConfig, codecs

from milkyway.model.crds import all_crds
from milkyway.server.app import build_state, create_app
from milkyway.server.settings import ServerSettings
from milkyway.server.state import ServerState
from milkyway.sim.clusters import SimulatedClusters

ROOT = Path(__file__).parents[3]
RBAC_DIR = ROOT / "deploy" / "rbac"
STREAM1 = ROOT / "examples" / "stream1.yaml"
API = "/api/v1"
SYSTEM_NS = "milkyway-system"
TOKENS_SECRET = "milkyway-server-tokens"


def bind(namespace: str, role: str, *, user: str = "", group: str = "") -> dict[str, Any]:
    subject = {"kind": "User", "name": user} if user else {"kind": "Group", "name": group}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{role}-{user or group}", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", **subject}],
    }


def application(name: str = "stream1", namespace: str = "team-a") -> dict[str, Any]:
    doc = yaml.safe_load(STREAM1.read_text())
    doc["metadata"] = {"name": name, "namespace": namespace}
    return doc


@dataclass
class Front:
    """The simulated management cluster, the admin's client and the server under test."""

    sim: SimulatedClusters
    admin: AsyncClient
    state: ServerState
    app: Any
    tokens: dict[str, str] = field(default_factory=dict)  # user -> static token

    def http(self, token: str | None = None, **headers: str) -> httpx.AsyncClient:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, client=("10.1.2.3", 4567)),
            base_url="http://server",
            headers=headers,
            timeout=60,
        )

    def as_user(self, user: str) -> httpx.AsyncClient:
        return self.http(self.tokens[user])

    async def apply(self, *docs: dict[str, Any]) -> None:
        for doc in docs:
            await self.admin.create(codecs.from_dict(doc))


def server_kubeconfig(sim: SimulatedClusters, token: str, path: Path) -> Path:
    """The simulator's kubeconfig with the server's own token instead of the admin's."""
    config = yaml.safe_load(Path(sim.kubeconfig_path).read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


# who: (groups, static token user line)
USERS: dict[str, tuple[str, ...]] = {
    "alice": ("team-a",),
    "bob": ("team-b",),
    "carol": ("platform",),
    "dave": (),
    "erin": ("approvers-a",),
}


async def start_front(tmp_path: Path, **settings: Any) -> tuple[Front, SimulatedClusters]:
    sim = SimulatedClusters(["mgmt"], kubeconfig_path=tmp_path / "kubeconfig", rbac=True)
    await sim.start()
    admin = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get("mgmt"))
    for crd in all_crds():
        await admin.create(codecs.from_dict(crd))
    for path in sorted(RBAC_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            await admin.create(codecs.from_dict(doc))
    for namespace in ("team-a", "team-b"):
        await admin.create(
            codecs.from_dict(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
        )
    server_token = sim.add_user("system:serviceaccount:milkyway-system:milkyway-server")
    tokens = {user: f"static-{user}-{i:04d}-token" for i, user in enumerate(USERS)}
    lines = [f'{tokens[u]},{u},{u},"{",".join(g)}"' for u, g in USERS.items()]
    await admin.create(
        codecs.from_dict(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": TOKENS_SECRET, "namespace": SYSTEM_NS},
                "data": {"tokens.csv": base64.b64encode("\n".join(lines).encode()).decode()},
            }
        )
    )
    config = ServerSettings(
        kubeconfig=server_kubeconfig(sim, server_token, tmp_path / "server-kubeconfig"),
        context="mgmt",
        audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
        static_tokens_secret=f"{SYSTEM_NS}/{TOKENS_SECRET}",
        **settings,
    )
    state = build_state(config)
    app = create_app(config, state)
    front = Front(sim, admin, state, app, tokens)
    await front.apply(
        bind("team-a", "milkyway-editor", group="team-a"),
        bind("team-b", "milkyway-editor", group="team-b"),
        bind("team-a", "milkyway-admin", group="platform"),
        bind("team-b", "milkyway-viewer", group="platform"),
        bind("team-a", "milkyway-approver", group="approvers-a"),
    )
    return front, sim


async def stop_front(front: Front) -> None:
    for close in front.state.closers:
        await close()
    await front.state.clients.close()
    front.state.audit.close()
    await front.admin.close()
    await front.sim.stop()


@pytest.fixture
async def front(tmp_path: Path) -> AsyncIterator[Front]:
    built, _ = await start_front(tmp_path)
    try:
        yield built
    finally:
        await stop_front(built)

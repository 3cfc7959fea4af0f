"""Everything the console is tested against, in one background thread: simulated clusters
(a management cluster with RBAC on and three member clusters in two regions), the
operator, a real OpenLDAP directory, and ``milkyway server`` over HTTPS on a free port.

Browser tests drive Chromium with Playwright's synchronous API from the test thread;
they act on the clusters through :meth:`ConsoleWorld.call`, which runs a coroutine on the
world's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
import yaml
from lightkube import ApiError, AsyncClient, KubeConfig, codecs

from milkyway.cli.app_commands import apply_documents
from milkyway.cli.demo import MemberCluster, is_ready, prepare_members, register_members
from milkyway.kube.resources import APPLICATION, FLOWRUN
from milkyway.notify.receivers import WebhookReceiver
from milkyway.operator.crd_install import install_crds
from milkyway.operator.manager import Operator, OperatorSettings
from milkyway.server.app import create_app
from milkyway.server.authn.ldap import LdapSettings
from milkyway.server.settings import ServerSettings
from milkyway.server.tls import self_signed
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig

ROOT = Path(__file__).parents[3]
EXAMPLES = ROOT / "examples"
MANAGEMENT = "mgmt"
MEMBERS = (
    MemberCluster("na-phx", "NA", "phx"),
    MemberCluster("na-slc", "NA", "slc"),
    MemberCluster("eu-ams", "EU", "ams"),
)
NAMESPACE = "team-a"
T = TypeVar("T")


def _binding(kind: str, role: str, *, user: str = "", group: str = "") -> dict[str, Any]:
    subject = {"kind": "User", "name": user} if user else {"kind": "Group", "name": group}
    metadata: dict[str, Any] = {"name": f"{role}-{user or group}"}
    if kind == "RoleBinding":
        metadata["namespace"] = NAMESPACE
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", **subject}],
    }


# Who may do what in the tests: alice edits team-a (she is in the directory's team-a
# group), carol administers and approves there and views every namespace (platform),
# bob only views team-a.
BINDINGS = (
    _binding("RoleBinding", "milkyway-editor", group="team-a"),
    _binding("RoleBinding", "milkyway-admin", group="platform"),
    _binding("RoleBinding", "milkyway-viewer", user="bob"),
    _binding("ClusterRoleBinding", "milkyway-viewer", group="platform"),
)

# Scaling in the Applications labelled env=prod waits for one approval by platform.
APPROVAL_POLICY = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "ApprovalPolicy",
    "metadata": {"name": "prod-scale-in", "namespace": NAMESPACE},
    "spec": {
        "match": {"operations": ["scale-in"], "selector": {"matchLabels": {"env": "prod"}}},
        "approvals": {"groups": ["platform"], "required": 1, "timeout": "1h"},
    },
}


# Anyone may ask for a Milkyway role in team-a for up to two hours; platform approves.
SUDO_POLICY = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "ApprovalPolicy",
    "metadata": {"name": "sudo-approval", "namespace": NAMESPACE},
    "spec": {
        "match": {"operations": ["sudo"]},
        "approvals": {"groups": ["platform"], "timeout": "1h"},
        "sudo": {"maxDuration": "2h"},
    },
}
HOOK = "ops-hook"
SUBSCRIBE = "notifications.milkyway.ebay.com/subscribe"


def notifications_config(url: str) -> dict[str, Any]:
    """The operator's notification config: one webhook service, posting to ``url``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "milkyway-notifications", "namespace": "milkyway-system"},
        "data": {f"service.webhook.{HOOK}": f"url: {url}/hook\n"},
    }


def stream1() -> str:
    doc = yaml.safe_load((EXAMPLES / "stream1.yaml").read_text())
    doc["metadata"] = {"name": "stream1", "namespace": NAMESPACE}
    return yaml.safe_dump(doc)


def ledger() -> str:
    """A small Application across both regions, labelled env=prod (its scale-ins wait
    for an approval), checked every minute, whose finished flows and approval requests
    are posted to the webhook."""
    doc = yaml.safe_load((ROOT / "tests" / "e2e" / "small.yaml").read_text())
    doc["metadata"] = {
        "name": "ledger",
        "namespace": NAMESPACE,
        "labels": {"env": "prod"},
        "annotations": {
            f"{SUBSCRIBE}.flow-succeeded.{HOOK}": "",
            f"{SUBSCRIBE}.approval-requested.{HOOK}": "",
        },
    }
    doc["spec"]["healthCheck"] = {"cron": "* * * * *"}
    return yaml.safe_dump(doc)


@dataclass
class ConsoleWorld:
    folder: Path
    ldap: LdapSettings
    url: str = ""
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    sim: SimulatedClusters | None = None
    control: ControlledClusters | None = None
    client: AsyncClient | None = None
    hook: WebhookReceiver | None = None
    _thread: threading.Thread | None = None
    _stop: asyncio.Event | None = None
    _ready: Future[None] = field(default_factory=Future)

    # -- acting on the world from the test thread ------------------------------------------

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 300) -> T:
        """Run ``make()`` on the world's loop and wait for its result."""

        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def application(self, name: str) -> dict[str, Any]:
        assert self.client is not None
        client = self.client
        return self.call(
            lambda: _as_dict(client.get(APPLICATION, name, namespace=NAMESPACE)), timeout=60
        )

    def wait_ready(self, name: str, within: float = 240) -> dict[str, Any]:
        """The Application once Ready with no flow running (fails naming its status)."""
        deadline = time.monotonic() + within
        obj: dict[str, Any] = {}
        while time.monotonic() < deadline:
            obj = self.application(name)
            if is_ready(obj) and not (obj.get("status") or {}).get("currentFlow"):
                return obj
            time.sleep(1)
        raise AssertionError(f"{name} not Ready after {within}s: {obj.get('status')}")

    def runs(self, name: str) -> list[dict[str, Any]]:
        assert self.client is not None
        client = self.client

        async def listed() -> list[dict[str, Any]]:
            labels = {"milkyway.ebay.com/application": name}
            return [
                dict(r.to_dict())
                async for r in client.list(FLOWRUN, namespace=NAMESPACE, labels=labels)
            ]

        return self.call(listed, timeout=60)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="console-world", daemon=True)
        self._thread.start()
        self._ready.result(600)

    def stop(self) -> None:
        if self._stop is not None and self._thread is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(120)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise
        finally:
            left = asyncio.all_tasks(self.loop)
            for task in left:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        names = [MANAGEMENT, *(m.name for m in MEMBERS)]
        topology = {m.name: (m.region, m.zone) for m in MEMBERS}
        kubeconfig = self.folder / "kubeconfig"
        async with contextlib.AsyncExitStack() as stack:
            self.sim = await stack.enter_async_context(
                SimulatedClusters(names, kubeconfig_path=kubeconfig, rbac=True)
            )
            self.control = await stack.enter_async_context(
                ControlledClusters(
                    self.sim,
                    nodes=6,
                    config=ControlPlaneConfig.fast(),
                    topology=topology,
                    admin=False,
                )
            )
            self.client = AsyncClient(KubeConfig.from_file(kubeconfig).get(MANAGEMENT))
            stack.push_async_callback(self.client.close)
            await install_crds(self.client)
            await prepare_members(kubeconfig, MEMBERS)
            await register_members(self.client, kubeconfig.read_text(), MEMBERS)
            await self._rbac()
            self.hook = WebhookReceiver(self.folder / "hook")
            await self.hook.start()
            stack.push_async_callback(self.hook.stop)
            await self.client.create(codecs.from_dict(notifications_config(self.hook.url)))
            operator = Operator(kubeconfig, MANAGEMENT, _operator_settings())
            task = asyncio.create_task(operator.run_forever())
            stack.push_async_callback(_cancel, task)
            await operator.wait_until_leading(60)
            await apply_documents(self.client, stream1(), NAMESPACE)
            await apply_documents(self.client, ledger(), NAMESPACE)
            await self.client.create(codecs.from_dict(APPROVAL_POLICY))
            await self.client.create(codecs.from_dict(SUDO_POLICY))
            server = await self._server(kubeconfig)
            stack.push_async_callback(_shutdown, server)
            self._ready.set_result(None)
            await self._stop.wait()

    async def _rbac(self) -> None:
        assert self.client is not None
        for namespace in (NAMESPACE, "milkyway-system"):
            with contextlib.suppress(ApiError):
                await self.client.create(
                    codecs.from_dict(
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
                    )
                )
        for path in sorted((ROOT / "deploy" / "rbac").glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    with contextlib.suppress(ApiError):
                        await self.client.create(codecs.from_dict(doc))
        for doc in BINDINGS:
            await self.client.create(codecs.from_dict(doc))

    async def _server(self, kubeconfig: Path) -> uvicorn.Server:
        settings = ServerSettings(
            kubeconfig=kubeconfig,
            context=MANAGEMENT,
            audit_url=f"sqlite:///{self.folder / 'audit.db'}",
            ldap=self.ldap,
            login_attempts=1000,
        )
        app = create_app(settings)
        cert, key, _ = self_signed(self.folder / "tls", ["127.0.0.1"])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            log_level="warning",
            lifespan="on",
        )
        server = uvicorn.Server(config)
        server_task = asyncio.create_task(server.serve())
        server.task = server_task  # type: ignore[attr-defined]
        for _ in range(1200):
            if server.started:
                break
            if server_task.done():
                server_task.result()
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        self.url = f"https://127.0.0.1:{port}"
        return server


def _operator_settings() -> OperatorSettings:
    return OperatorSettings(
        leader_election=False,
        heartbeat_interval=0.5,
        heartbeat_timeout=5.0,
        engine_poll_interval=0.1,
        flow_lease_seconds=3.0,
        resync_period=5.0,
    )


async def _as_dict(pending: Awaitable[Any]) -> dict[str, Any]:
    return dict((await pending).to_dict())


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, 30)


async def _shutdown(server: uvicorn.Server) -> None:
    server.should_exit = True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.task, 30)  # type: ignore[attr-defined]


@contextlib.contextmanager
def console_world(folder: Path, ldap: LdapSettings) -> Iterator[ConsoleWorld]:
    world = ConsoleWorld(folder, ldap)
    world.start()
    try:
        yield world
    finally:
        world.stop()

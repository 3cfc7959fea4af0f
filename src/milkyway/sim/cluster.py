"""One simulated cluster: its in-process API, its HTTP server and, optionally, its storage."""

from __future__ import annotations

import ssl
from pathlib import Path

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.apiserver.auth import TokenAuthenticator
from milkyway.sim.apiserver.persistence import SqlitePersistence
from milkyway.sim.apiserver.server import ApiServer
from milkyway.sim.process.runtime import ProcessRuntime


class SimulatedCluster:
    """A named cluster: ``api`` (the :class:`ClusterAPI`) served at ``url``.

    With ``data_dir``, objects and the revision counter are kept in
    ``<data_dir>/<name>.sqlite`` and restored on the next start.
    """

    def __init__(
        self,
        name: str,
        *,
        authenticator: TokenAuthenticator | None = None,
        rbac: bool = False,
        data_dir: str | Path | None = None,
        kubernetes_version: str = "1.32",
        port: int = 0,
        bookmark_interval: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.runtime: ProcessRuntime | None = None
        """Runs this cluster's pods of mapped images as processes, once a control plane
        with a process runtime is attached (see ``ControlledClusters(images=...)``)."""
        self.persistence = (
            SqlitePersistence(Path(data_dir) / f"{name}.sqlite") if data_dir is not None else None
        )
        self.api = ClusterAPI(
            name=name, kubernetes_version=kubernetes_version, bootstrap=self.persistence is None
        )
        if self.persistence is not None:
            self.persistence.load(self.api)
            self.persistence.attach(self.api)
            self.api.ensure_system_namespaces()
        self.server = ApiServer(
            self.api,
            port=port,
            authenticator=authenticator,
            rbac=rbac,
            bookmark_interval=bookmark_interval,
            ssl_context=ssl_context,
        )

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> str:
        url = await self.server.start()
        if self.persistence is not None:
            self.persistence.start()
        return url

    async def stop(self) -> None:
        await self.server.stop()
        if self.persistence is not None:
            await self.persistence.close()

"""Several simulated clusters in one process, with one kubeconfig for all of them.

async with SimulatedClusters(["mgmt", "na-phx"]) as sim:
    sim.kubeconfig_path          # one context per cluster, admin token
    sim["na-phx"].api            # the in-process ClusterAPI
    sim["na-phx"].url            # http://127.0.0.1:<port>
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from milkyway.sim.apiserver.auth import (
    AUTHENTICATED_GROUP,
    SUPERUSER_GROUP,
    TokenAuthenticator,
    User,
    admin_tokens,
    parse_token_file,
    render_token_file,
)
from milkyway.sim.apiserver.serviceaccount_tokens import ServiceAccountTokens
from milkyway.sim.cluster import SimulatedCluster
from milkyway.sim.kubeconfig import write_kubeconfig
from milkyway.sim.private_file import write_private
from milkyway.sim.tls import ServingCertificate, generate

TOKEN_FILE = "tokens.csv"


class SimulatedClusters:
    """Start, serve and stop a set of named clusters.

    ``data_dir``: keep each cluster's objects there (and the token file, so a restarted
    simulator accepts the same kubeconfig). ``kubeconfig_path``: where to write the
    kubeconfig (default: a temporary directory removed on exit). ``token_file``: users in
    kube-apiserver's token-file format (default: one generated admin token). ``rbac``:
    enforce RBAC for users outside ``system:masters``.
    """

    def __init__(
        self,
        names: Iterable[str],
        *,
        data_dir: str | Path | None = None,
        kubeconfig_path: str | Path | None = None,
        token_file: str | Path | None = None,
        rbac: bool = False,
        kubernetes_version: str = "1.32",
        bookmark_interval: float = 5.0,
    ) -> None:
        self.names = list(dict.fromkeys(names))
        if not self.names:
            raise ValueError("name at least one cluster, e.g. SimulatedClusters(['mgmt'])")
        for name in self.names:
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"invalid cluster name {name!r}: use letters, digits and '-'")
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self._kubeconfig_arg = Path(kubeconfig_path) if kubeconfig_path is not None else None
        self._token_file = Path(token_file) if token_file is not None else None
        self.rbac = rbac
        self.kubernetes_version = kubernetes_version
        self.bookmark_interval = bookmark_interval
        self.clusters: dict[str, SimulatedCluster] = {}
        self.authenticator = TokenAuthenticator({})
        self.admin_token = ""
        self.kubeconfig_path = Path()
        self.certificate: ServingCertificate | None = None
        self._tmp: Path | None = None

    def _load_tokens(self) -> None:
        source = self._token_file
        if source is None and self.data_dir is not None and (self.data_dir / TOKEN_FILE).exists():
            source = self.data_dir / TOKEN_FILE
        users = parse_token_file(source.read_text()) if source is not None else admin_tokens()
        admins = [t for t, u in users.items() if SUPERUSER_GROUP in u.groups]
        if not admins:
            token = secrets.token_urlsafe(24)
            users[token] = User("admin", "admin", (SUPERUSER_GROUP, AUTHENTICATED_GROUP))
            admins = [token]
        self.admin_token = admins[0]
        self.authenticator = TokenAuthenticator(users)
        if self.data_dir is not None and source is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            write_private(self.data_dir / TOKEN_FILE, render_token_file(users))

    def add_user(self, name: str, groups: Iterable[str] = ()) -> str:
        """Create a bearer token for ``name`` (in ``groups``) valid on every cluster."""
        token = secrets.token_urlsafe(24)
        self.authenticator.add(token, User(name, name, (*groups, AUTHENTICATED_GROUP)))
        return token

    def _certificate(self) -> ServingCertificate:
        if self.data_dir is not None:
            folder = self.data_dir / "tls"
            existing = ServingCertificate.read(folder)
            if existing is not None:
                return existing
            cert = generate()
            cert.write(folder)
            return cert
        return generate()

    async def start(self) -> SimulatedClusters:
        self._load_tokens()
        self._tmp = Path(tempfile.mkdtemp(prefix="milkyway-sim-"))
        self.kubeconfig_path = self._kubeconfig_arg or self._tmp / "kubeconfig"
        cert = self.certificate = self._certificate()
        context = cert.server_context(self._tmp / "tls")
        try:
            for name in self.names:
                cluster = SimulatedCluster(
                    name,
                    authenticator=self.authenticator,
                    rbac=self.rbac,
                    data_dir=self.data_dir,
                    kubernetes_version=self.kubernetes_version,
                    bookmark_interval=self.bookmark_interval,
                    ssl_context=context,
                )
                cluster.api.ca_pem = cert.ca_pem
                cluster.api.service_account_tokens = ServiceAccountTokens.derived_from(
                    cert.key_pem + name.encode()
                )
                self.clusters[name] = cluster
                await cluster.start()
        except BaseException:
            await self.stop()
            raise
        write_kubeconfig(
            self.kubeconfig_path,
            {n: c.url for n, c in self.clusters.items()},
            self.admin_token,
            ca_pem=cert.ca_pem,
        )
        return self

    async def stop(self) -> None:
        for cluster in list(self.clusters.values()):
            await cluster.stop()
        self.clusters.clear()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    async def __aenter__(self) -> SimulatedClusters:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __getitem__(self, name: str) -> SimulatedCluster:
        try:
            return self.clusters[name]
        except KeyError:
            raise KeyError(
                f"no simulated cluster named {name!r}; running: {', '.join(self.clusters)}"
            ) from None

    def __iter__(self) -> Iterator[SimulatedCluster]:
        return iter(self.clusters.values())

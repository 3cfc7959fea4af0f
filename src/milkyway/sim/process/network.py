"""Pod addresses and the names pods resolve, shared by every cluster of one simulator.

Every address in 127.0.0.0/8 is local, so each process-backed pod gets its own
``127.a.b.c`` and its containers bind their real ports without clashing. Names follow
Kubernetes DNS: a pod with ``hostname`` and ``subdomain`` is
``<hostname>.<subdomain>.<namespace>.svc.cluster.local`` inside its cluster, and, as in
the Multi-Cluster Services scheme, ``<hostname>.<cluster>.<subdomain>.<namespace>.svc.
clusterset.local`` from every cluster. Each pod sees these names through its own
``/etc/hosts``, rewritten in place (the file is bind-mounted, so its inode must stay)
whenever a pod address appears or goes.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CLUSTER_DOMAIN = "cluster.local"
CLUSTERSET_DOMAIN = "clusterset.local"


@dataclass(frozen=True)
class PodName:
    """One process-backed pod's entry in the shared registry."""

    cluster: str
    namespace: str
    name: str
    ip: str
    hostname: str
    subdomain: str


class PodNetwork:
    """Allocates pod addresses and renders each pod's ``/etc/hosts``.

    Addresses are drawn at random from 127.0.0.0/8 (avoiding 127.0.0.0/16, where the
    machine's own services live) so simulators running side by side on one machine do
    not collide.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self._used: set[str] = set()
        self._owners: dict[tuple[str, ...], str] = {}
        self.pods: dict[tuple[str, str, str], PodName] = {}
        self.api_hosts: dict[str, str] = {}
        """Cluster name -> the API server's address, for ``kubernetes.default.svc``."""
        self._hosts_files: dict[tuple[str, str, str], Path] = {}
        self.services: dict[tuple[str, str, str], tuple[str, ...]] = {}
        """(cluster, namespace, Service) -> addresses of its ready process-backed pods."""
        self.on_change: list[Callable[[], None]] = []

    def allocate(self, owner: tuple[str, ...] | None = None) -> str:
        """A free address; ``owner`` (cluster, namespace, pod name) gets its previous
        address back when it is free, so a pod re-created under its name (a StatefulSet
        member) keeps the address its peers and clients last knew."""
        if owner is not None:
            previous = self._owners.get(owner)
            if previous is not None and previous not in self._used:
                self._used.add(previous)
                return previous
        ip = self._fresh()
        if owner is not None:
            self._owners[owner] = ip
        return ip

    def _fresh(self) -> str:
        while True:
            a = self._rng.randrange(1, 255)
            ip = f"127.{a}.{self._rng.randrange(0, 256)}.{self._rng.randrange(1, 255)}"
            if ip not in self._used:
                self._used.add(ip)
                return ip

    def release(self, ip: str) -> None:
        self._used.discard(ip)

    def register(self, entry: PodName, hosts_file: Path) -> None:
        key = (entry.cluster, entry.namespace, entry.name)
        self.pods[key] = entry
        self._hosts_files[key] = hosts_file
        self.refresh()

    def unregister(self, cluster: str, namespace: str, name: str) -> None:
        key = (cluster, namespace, name)
        entry = self.pods.pop(key, None)
        self._hosts_files.pop(key, None)
        if entry is not None:
            self.refresh()

    def set_service(self, cluster: str, namespace: str, name: str, ips: list[str]) -> None:
        """The ready addresses behind a Service (from its Endpoints); names resolve to
        them as a headless Service's DNS name does."""
        key = (cluster, namespace, name)
        known = tuple(sorted(ip for ip in ips if ip in self._used))
        if self.services.get(key, ()) == known:
            return
        if known:
            self.services[key] = known
        else:
            self.services.pop(key, None)
        self.refresh()

    def _service_lines(self, viewer: PodName) -> list[tuple[str, list[str]]]:
        lines: list[tuple[str, list[str]]] = []
        cluster_set: dict[tuple[str, str], set[str]] = {}
        for (cluster, namespace, name), ips in sorted(self.services.items()):
            cluster_set.setdefault((namespace, name), set()).update(ips)
            if cluster != viewer.cluster:
                continue
            names = [f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}", f"{name}.{namespace}.svc"]
            if namespace == viewer.namespace:
                names.append(name)
            lines += [(ip, list(names)) for ip in ips]
        for (namespace, name), ips in sorted(cluster_set.items()):
            lines += [(ip, [f"{name}.{namespace}.svc.{CLUSTERSET_DOMAIN}"]) for ip in sorted(ips)]
        return lines

    def names_for(self, viewer: PodName) -> list[tuple[str, list[str]]]:
        """``(ip, names)`` lines of ``viewer``'s hosts file."""
        lines: list[tuple[str, list[str]]] = [
            ("127.0.0.1", ["localhost"]),
            ("::1", ["localhost", "ip6-localhost", "ip6-loopback"]),
        ]
        api = self.api_hosts.get(viewer.cluster)
        if api:
            lines.append(
                (
                    api,
                    [
                        f"kubernetes.default.svc.{CLUSTER_DOMAIN}",
                        "kubernetes.default.svc",
                        "kubernetes.default",
                        "kubernetes",
                    ],
                )
            )
        for entry in sorted(self.pods.values(), key=lambda e: (e.cluster, e.namespace, e.name)):
            names: list[str] = []
            same_cluster = entry.cluster == viewer.cluster
            if entry.subdomain:
                local = f"{entry.hostname}.{entry.subdomain}.{entry.namespace}.svc"
                if same_cluster:
                    names.append(f"{local}.{CLUSTER_DOMAIN}")
                    names.append(local)
                    if entry.namespace == viewer.namespace:
                        names.append(f"{entry.hostname}.{entry.subdomain}")
                names.append(
                    f"{entry.hostname}.{entry.cluster}.{entry.subdomain}.{entry.namespace}"
                    f".svc.{CLUSTERSET_DOMAIN}"
                )
            if entry == viewer:
                names.append(entry.hostname)
            if names:
                lines.append((entry.ip, names))
        return lines + self._service_lines(viewer)

    def render(self, viewer: PodName) -> str:
        out = ["# Kubernetes-managed hosts file (simulated pod)."]
        for ip, names in self.names_for(viewer):
            ipaddress.ip_address(ip)
            out.append(f"{ip}\t{' '.join(names)}")
        return "\n".join(out) + "\n"

    def refresh(self) -> None:
        """Rewrite every registered pod's hosts file in place."""
        for key, path in list(self._hosts_files.items()):
            viewer = self.pods.get(key)
            if viewer is None:
                continue
            write_in_place(path, self.render(viewer))


def write_in_place(path: Path, text: str) -> None:
    """Overwrite ``path`` keeping its inode (bind mounts of it see the new content)."""
    data = text.encode()
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    with open(path, "r+b" if path.exists() else "wb") as f:
        f.write(data)
        f.truncate()

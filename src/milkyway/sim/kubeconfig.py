"""Kubeconfig files for the simulated clusters: one context per cluster, named after it."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from milkyway.sim.private_file import write_private


def kubeconfig(
    servers: Mapping[str, str],
    token: str,
    *,
    current: str | None = None,
    ca_pem: bytes | None = None,
) -> dict[str, Any]:
    """A kubeconfig document: ``servers`` maps cluster name to URL; one admin token."""
    names = list(servers)
    cluster: dict[str, Any] = {}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": n, "cluster": {"server": servers[n], **cluster}} for n in names],
        "users": [{"name": f"{n}-admin", "user": {"token": token}} for n in names],
        "contexts": [
            {"name": n, "context": {"cluster": n, "user": f"{n}-admin", "namespace": "default"}}
            for n in names
        ],
        "current-context": current or (names[0] if names else ""),
    }


def write_kubeconfig(
    path: str | Path,
    servers: Mapping[str, str],
    token: str,
    *,
    current: str | None = None,
    ca_pem: bytes | None = None,
) -> Path:
    """Write the kubeconfig readable only by its owner (it holds a token)."""
    text = yaml.safe_dump(
        kubeconfig(servers, token, current=current, ca_pem=ca_pem), sort_keys=False
    )
    return write_private(Path(path), text)

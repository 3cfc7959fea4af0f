"""Kubeconfig files for the simulated clusters: one context per cluster, named after it."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


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
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(
        kubeconfig(servers, token, current=current, ca_pem=ca_pem), sort_keys=False
    )
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(target)
    return target

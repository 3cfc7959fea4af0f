"""One lightkube async client per cluster context, built from a kubeconfig.

Milkyway talks to every cluster, simulated or real, only through the Kubernetes HTTP API.
Clients are explicit (no global configuration): the management cluster's comes from the
operator's kubeconfig and context, a member cluster's from the kubeconfig stored in the
Secret its ``Cluster`` resource names. Both paths end in :func:`client_from_kubeconfig`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx2
import yaml
from lightkube import AsyncClient, KubeConfig

from milkyway.kube.api_metrics import count_requests

FIELD_MANAGER = "milkyway"
_CONTEXT_OF_SERVER: dict[str, str] = {}
"""Server URL to the context a client of this process was built for: only to name the
context in a message when that server does not answer (see :func:`context_of_server`)."""


class KubeconfigError(ValueError):
    """A kubeconfig that cannot be used; the message says what to fix."""


def load_kubeconfig(source: str | Path | Mapping[str, Any]) -> KubeConfig:
    """Parse a kubeconfig from a path or from an already-loaded mapping."""
    if isinstance(source, Mapping):
        return KubeConfig.from_dict(dict(source))
    path = Path(source).expanduser()
    if not path.is_file():
        raise KubeconfigError(f"kubeconfig {str(path)!r} does not exist; pass --kubeconfig PATH")
    return KubeConfig.from_file(path)


def context_names(config: KubeConfig) -> list[str]:
    return sorted(config.contexts)


def client_from_kubeconfig(
    source: str | Path | Mapping[str, Any],
    context: str | None = None,
    *,
    namespace: str | None = None,
    timeout: float = 30.0,
) -> AsyncClient:
    """An async client for ``context`` (the kubeconfig's current context if ``None``)."""
    config = load_kubeconfig(source)
    if context is not None and context not in config.contexts:
        known = ", ".join(context_names(config)) or "none"
        raise KubeconfigError(
            f"context {context!r} is not in the kubeconfig; known contexts: {known}"
        )
    single = config.get(context_name=context)
    if single is None:
        raise KubeconfigError("the kubeconfig has no current-context; pass --context NAME")
    _CONTEXT_OF_SERVER[single.cluster.server.rstrip("/")] = single.context_name
    client = AsyncClient(
        config=single,
        namespace=namespace,
        field_manager=FIELD_MANAGER,
        timeout=httpx2.Timeout(timeout),
        trust_env=False,
    )
    count_requests(client, single.context_name)
    return client


def kubeconfig_user(source: str | Path | Mapping[str, Any], context: str | None) -> str | None:
    """The user name ``context`` (default: the current one) authenticates as in the
    kubeconfig; ``None`` when the kubeconfig or the context cannot be read."""
    try:
        config = load_kubeconfig(source)
    except (KubeconfigError, OSError, ValueError):
        return None
    name = context or config.current_context
    entry = config.contexts.get(name) if name else None
    return getattr(entry, "user", None) or None


def context_of_server(server: str) -> str | None:
    """The kubeconfig context a client of this process was built for, by server URL."""
    return _CONTEXT_OF_SERVER.get(server.rstrip("/"))


def kubeconfig_from_secret_data(data: Mapping[str, str], key: str = "kubeconfig") -> dict[str, Any]:
    """Decode the kubeconfig stored base64-encoded under ``key`` in a Secret's ``data``."""
    if key not in data:
        raise KubeconfigError(
            f"the Secret has no key {key!r} (keys: {', '.join(sorted(data)) or 'none'}); "
            f"store the kubeconfig under data.{key}"
        )
    try:
        text = base64.b64decode(data[key], validate=True).decode()
        loaded = yaml.safe_load(text)
    except (ValueError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise KubeconfigError(f"data.{key} is not a base64-encoded kubeconfig: {exc}") from exc
    if not isinstance(loaded, dict) or "clusters" not in loaded:
        raise KubeconfigError(f"data.{key} does not hold a kubeconfig (no 'clusters' list)")
    return loaded

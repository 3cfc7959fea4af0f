"""The kubeconfig of a process running in a pod: its service account's token, the
cluster's CA and the API server named by ``KUBERNETES_SERVICE_HOST``/``_PORT``.

The token is referenced as ``tokenFile``, not copied: the kubelet rotates a projected
token, and lightkube rereads the file when the server answers 401.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from milkyway.kube.clients import KubeconfigError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IN_CLUSTER_CONTEXT = "in-cluster"


def in_cluster_kubeconfig(
    env: Mapping[str, str] | None = None, account_dir: Path = SERVICE_ACCOUNT_DIR
) -> dict[str, Any] | None:
    """The in-cluster kubeconfig, or None when this process does not run in a pod (no
    ``KUBERNETES_SERVICE_HOST``)."""
    env = os.environ if env is None else env
    host = env.get("KUBERNETES_SERVICE_HOST", "")
    if not host:
        return None
    port = env.get("KUBERNETES_SERVICE_PORT", "443")
    token, ca = account_dir / "token", account_dir / "ca.crt"
    for needed in (token, ca):
        if not needed.is_file():
            raise KubeconfigError(
                f"running in a pod (KUBERNETES_SERVICE_HOST={host}) but {needed} is missing; "
                "mount the service account token (automountServiceAccountToken: true) or "
                "pass --kubeconfig"
            )
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    cluster: dict[str, Any] = {"server": f"https://{host}:{port}", "certificate-authority": str(ca)}
    context: dict[str, Any] = {"cluster": IN_CLUSTER_CONTEXT, "user": IN_CLUSTER_CONTEXT}
    namespace_file = account_dir / "namespace"
    if namespace_file.is_file():
        context["namespace"] = namespace_file.read_text().strip()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": IN_CLUSTER_CONTEXT, "cluster": cluster}],
        "users": [{"name": IN_CLUSTER_CONTEXT, "user": {"tokenFile": str(token)}}],
        "contexts": [{"name": IN_CLUSTER_CONTEXT, "context": context}],
        "current-context": IN_CLUSTER_CONTEXT,
    }


def management_kubeconfig(
    kubeconfig: Path | None, context: str | None
) -> tuple[Path | dict[str, Any], str | None]:
    """What a Milkyway process uses to reach the management cluster: ``--kubeconfig``
    when given, else the pod's in-cluster configuration, else ``~/.kube/config``."""
    if kubeconfig is not None:
        return kubeconfig, context
    found = in_cluster_kubeconfig()
    if found is not None:
        return found, None
    return Path("~/.kube/config").expanduser(), context

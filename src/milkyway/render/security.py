"""Security settings of every rendered pod, and the sidecar agent container.

Every pod runs as a non-root uid/gid with ``fsGroup`` for its volumes, the RuntimeDefault
seccomp profile, no service account token unless the type asks for one, and no Service
environment variables. Every container drops ALL capabilities (a type may add back only
the ones it names), cannot escalate privileges, and keeps a read-only root filesystem
unless its type says the software cannot.
"""

from __future__ import annotations

from typing import Any

from milkyway import __version__
from milkyway.kube.agent_contract import AGENT_KEYS_DIR, AGENT_PORT
from milkyway.model.component_type import ContainerSpec

AGENT_NAME = "milkyway-agent"
IMAGE_NAME = "milkyway/milkyway"
"""The one Milkyway image (the Dockerfile at the repository's root): operator, server and
agent; ``deploy/`` installs the same name and version."""
AGENT_IMAGE = f"{IMAGE_NAME}:{__version__}"
AGENT_UID = 65532
"""The agent's own unprivileged uid (the conventional ``nonroot`` user)."""


def pod_security_context(container: ContainerSpec) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": container.user,
        "runAsGroup": container.group,
        "fsGroup": container.group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(
    user: int, group: int, read_only_root: bool, add_capabilities: list[str]
) -> dict[str, Any]:
    capabilities: dict[str, Any] = {"drop": ["ALL"]}
    if add_capabilities:
        capabilities["add"] = sorted(add_capabilities)
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": capabilities,
        "privileged": False,
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def main_container_security(container: ContainerSpec) -> dict[str, Any]:
    return container_security_context(
        container.user,
        container.group,
        container.read_only_root_filesystem,
        list(container.add_capabilities),
    )


def agent_container(
    env: list[dict[str, Any]], config_volume: str, data_path: str | None
) -> dict[str, Any]:
    """The sidecar agent: reads the config and reports member health; it gets no
    capabilities, no write access outside its own scratch directory and the member's data
    volume (mounted read-write only so that a read-only remount of a failing disk is seen
    as one), and a small budget (the agent process holds about 60 MiB)."""
    mounts: list[dict[str, Any]] = [
        {"name": config_volume, "mountPath": "/etc/milkyway/config", "readOnly": True},
        {"name": "agent-keys", "mountPath": AGENT_KEYS_DIR, "readOnly": True},
        {"name": "agent-tmp", "mountPath": "/tmp"},
    ]
    if data_path is not None:
        mounts.append({"name": "data", "mountPath": data_path})
    return {
        "name": AGENT_NAME,
        "image": AGENT_IMAGE,
        "command": ["milkyway", "agent"],
        "env": env,
        "ports": [{"name": "agent", "containerPort": AGENT_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": "agent"},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "resources": {
            "requests": {"cpu": "10m", "memory": "64Mi"},
            "limits": {"memory": "128Mi"},
        },
        "securityContext": container_security_context(AGENT_UID, AGENT_UID, True, []),
        "volumeMounts": mounts,
    }

"""The pod template shared by all four deploy patterns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from milkyway.kube.agent_contract import AGENT_KEYS_SECRET
from milkyway.kube.generated_secrets import generated_secret_name
from milkyway.kube.labels import APPLICATION, COMPONENT, ZONE
from milkyway.model.application import Resources
from milkyway.model.component_type import ComponentTypeSpec, ProbeSpec
from milkyway.render.context import CONFIG_DIR
from milkyway.render.security import (
    agent_container,
    main_container_security,
    pod_security_context,
)

MEMBERS_FILE = "members"
_MEMBERS_PATH = f"{CONFIG_DIR}/{MEMBERS_FILE}"
MEMBER_PRELUDE = (
    f'if [ -z "${{MILKYWAY_MEMBER_ID:-}}" ] && [ -f {_MEMBERS_PATH} ]; then\n'
    '  ordinal="${HOSTNAME##*-}"\n'
    f'  MILKYWAY_MEMBER_ID="$(awk -v o="$ordinal" \'$1 == o {{print $2}}\' {_MEMBERS_PATH})"\n'
    f'  MILKYWAY_MEMBER_HOST="$(awk -v o="$ordinal" \'$1 == o {{print $3}}\' {_MEMBERS_PATH})"\n'
    "  export MILKYWAY_MEMBER_ID MILKYWAY_MEMBER_HOST\n"
    "fi\n"
)
"""StatefulSet pods share one template, so each finds its identity by its ordinal in the
``members`` file of the ConfigMap (``<ordinal> <id> <host>`` per line)."""


@dataclass(frozen=True)
class PodInputs:
    """Everything the pod template of one zone (or one member) is built from."""

    spec: ComponentTypeSpec
    image: str
    start_script: str
    env: list[dict[str, Any]]
    labels: dict[str, str]
    annotations: dict[str, str]
    config_map: str
    resources: Resources
    data_volume: dict[str, Any] | None
    """Volume definition of ``data`` for the pod (None when a claim template provides it)."""
    hostname: str | None = None
    subdomain: str | None = None
    node: str | None = None


def pod_template(inputs: PodInputs) -> dict[str, Any]:
    spec = inputs.spec
    container = spec.container
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": inputs.config_map}},
        {"name": "agent-tmp", "emptyDir": {}},
        {
            "name": "agent-keys",
            "secret": {"secretName": AGENT_KEYS_SECRET, "optional": True, "defaultMode": 0o444},
        },
    ]
    if inputs.data_volume is not None:
        volumes.append({"name": "data", **inputs.data_volume})
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "data", "mountPath": container.data_path},
    ]
    for index, path in enumerate(container.writable_paths):
        volumes.append({"name": f"scratch-{index}", "emptyDir": {}})
        mounts.append({"name": f"scratch-{index}", "mountPath": path})
    secret_mounts = _generated_secrets(inputs, volumes)
    mounts.extend(secret_mounts)
    main: dict[str, Any] = {
        "name": "main",
        "image": inputs.image,
        "command": ["/bin/sh", "-ec", MEMBER_PRELUDE + inputs.start_script],
        "env": inputs.env,
        "ports": [
            {"name": port.name, "containerPort": port.port, "protocol": port.protocol}
            for port in spec.ports
        ],
        "resources": _resources(inputs.resources),
        "securityContext": main_container_security(container),
        "volumeMounts": mounts,
    }
    for kind in ("readiness", "liveness", "startup"):
        probe = getattr(spec.probes, kind)
        if probe is not None:
            main[f"{kind}Probe"] = _probe(probe)
    agent = agent_container(_agent_env(inputs.env), "config", container.data_path)
    agent["volumeMounts"].extend(secret_mounts)
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": container.service_account_token,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(container),
        "terminationGracePeriodSeconds": container.termination_grace_period_seconds,
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": _selector(inputs.labels)},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        },
        "containers": [main, agent],
        "volumes": volumes,
    }
    if inputs.hostname:
        pod_spec["hostname"] = inputs.hostname
    if inputs.subdomain:
        pod_spec["subdomain"] = inputs.subdomain
    if inputs.node:
        pod_spec["nodeSelector"] = {"kubernetes.io/hostname": inputs.node}
    return {
        "metadata": {"labels": inputs.labels, "annotations": inputs.annotations},
        "spec": pod_spec,
    }


def _generated_secrets(inputs: PodInputs, volumes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Volumes (added to ``volumes``) and read-only mounts of the Secrets Milkyway generates
    for this component: the data system reads them, the agent watches them for rotation."""
    mounts: list[dict[str, Any]] = []
    for secret in inputs.spec.agent.secrets:
        if secret.generate is None:
            continue
        name = generated_secret_name(
            inputs.labels[APPLICATION], inputs.labels[COMPONENT], secret.name
        )
        volume = f"secret-{secret.name}"
        volumes.append({"name": volume, "secret": {"secretName": name, "defaultMode": 0o440}})
        mounts.append({"name": volume, "mountPath": secret.path, "readOnly": True})
    return mounts


def _selector(labels: dict[str, str]) -> dict[str, str]:
    return {key: labels[key] for key in (APPLICATION, COMPONENT, ZONE)}


def _agent_env(env: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in env if item["name"].startswith("MILKYWAY_")] + [
        {"name": "MILKYWAY_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {
            "name": "MILKYWAY_POD_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
        {"name": "MILKYWAY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]


def _resources(resources: Resources) -> dict[str, Any]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if resources.cpu:
        requests["cpu"] = resources.cpu
    if resources.memory:
        requests["memory"] = resources.memory
    if resources.cpu_limit:
        limits["cpu"] = resources.cpu_limit
    if resources.memory_limit or resources.memory:
        limits["memory"] = resources.memory_limit or resources.memory or ""
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _probe(probe: ProbeSpec) -> dict[str, Any]:
    out: dict[str, Any]
    if probe.exec is not None:
        out = {"exec": {"command": list(probe.exec)}}
    elif probe.tcp_port is not None:
        out = {"tcpSocket": {"port": probe.tcp_port}}
    else:
        out = {"httpGet": {"path": probe.http_path, "port": probe.http_port}}
    out.update(
        {
            "initialDelaySeconds": probe.initial_delay_seconds,
            "periodSeconds": probe.period_seconds,
            "timeoutSeconds": probe.timeout_seconds,
            "failureThreshold": probe.failure_threshold,
        }
    )
    return out

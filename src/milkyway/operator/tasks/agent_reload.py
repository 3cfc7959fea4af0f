"""Hot reload through the member's agent: once the kubelet has published the new
ConfigMap files into the pod, run the type's ``configReloadAction`` with a signed token
through ``pods/proxy`` and check that the agent applied exactly that version.

The expected version is computed here from the ConfigMap the flow applied, the same way
the agent hashes its config directory, so "applied" means these files and not merely
"some reload ran".
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lightkube.resources.core_v1 import ConfigMap

from milkyway.flows.tasks import FatalError, RetryableError, TaskContext
from milkyway.kube.agent_client import AgentClient, AgentError
from milkyway.kube.agent_contract import AGENT_CONFIG_DIR, AGENT_CONFIG_FILE, files_hash
from milkyway.kube.labels import CONFIG_HASH
from milkyway.operator.tasks.common import Clock, exists, still_waiting

RELOAD_REQUESTER = "system:milkyway-operator"
"""The requester the agents log for reloads the operator asks for."""


@dataclass(frozen=True)
class ReloadTarget:
    """What a zone's hot reload runs and the config version it must end on."""

    action: str | None
    """The type's ``configReloadAction``; ``None`` when it declares none."""
    version: str
    """The agent's hash of the ConfigMap's files (its own declaration left out)."""


def config_map_of(pod: Mapping[str, Any]) -> str | None:
    """The ConfigMap mounted at the agent's config directory in ``pod``."""
    spec = pod.get("spec") or {}
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for container in spec.get("containers") or []:
        for mount in container.get("volumeMounts") or []:
            if mount.get("mountPath") == AGENT_CONFIG_DIR:
                source = (volumes.get(mount.get("name")) or {}).get("configMap") or {}
                return source.get("name")
    return None


def reload_target(config_map: Mapping[str, Any]) -> ReloadTarget:
    data = config_map.get("data") or {}
    files = {name: str(text).encode() for name, text in data.items()}
    for name, encoded in (config_map.get("binaryData") or {}).items():
        files[name] = base64.b64decode(encoded)
    declaration = files.pop(AGENT_CONFIG_FILE, None)
    action = None
    if declaration is not None:
        action = json.loads(declaration).get("configReloadAction")
    return ReloadTarget(action, files_hash(files))


async def zone_reload_target(
    ctx: TaskContext, cluster: str, namespace: str, name: str, config_map_hash: str
) -> ReloadTarget:
    """The target read from the zone's live ConfigMap, which must be the version the flow
    applied (a ConfigMap changed since is a newer change: the attempt is retried)."""
    found = await exists(ctx, cluster, ConfigMap, name, namespace)
    if found is None:
        raise RetryableError(f"ConfigMap {namespace}/{name} is missing; it is re-applied")
    live = ((found.get("metadata") or {}).get("annotations") or {}).get(CONFIG_HASH)
    if config_map_hash and live != config_map_hash:
        raise RetryableError(
            f"ConfigMap {namespace}/{name} holds config {live}, not {config_map_hash}"
        )
    return reload_target(found)


async def reload_member(
    ctx: TaskContext,
    agent: AgentClient,
    target: ReloadTarget,
    clock: Clock,
    interval: float,
) -> dict[str, Any]:
    """Wait for the pod to see ``target.version``, run the reload action, and return the
    agent's report. The action failing is fatal with the agent's own output: retrying a
    reload the software rejected rejects it again."""
    assert target.action is not None
    where = f"{agent.namespace}/{agent.pod}"
    while True:
        try:
            config = (await agent.status()).get("config") or {}
        except AgentError as error:
            config = {"unreachable": str(error)}
        if config.get("applied") == target.version:
            return {"pod": agent.pod, "applied": target.version, "ran": False}
        if config.get("current") == target.version:
            break
        seen = config.get("unreachable") or f"it has {config.get('current')}"
        still_waiting(
            ctx,
            clock,
            f"waiting for {where} to see config {target.version} ({seen})",
            f"{where} did not see config {target.version} in time ({seen})",
        )
        await asyncio.sleep(interval)
    try:
        report = await agent.run_action(target.action, RELOAD_REQUESTER)
    except AgentError as error:
        if error.status in (401, 403, 404):
            raise FatalError(f"{where}: {target.action} refused: {error}") from None
        raise RetryableError(f"{where}: {target.action} not run: {error}") from None
    if not report.get("ok"):
        output = str(report.get("output") or "").strip()[-500:]
        raise FatalError(
            f"{where}: {target.action} failed (exit code {report.get('exitCode')}): {output}"
        )
    applied = (report.get("config") or {}).get("applied")
    if applied != target.version:
        raise RetryableError(
            f"{where}: {target.action} applied config {applied}, not {target.version}"
        )
    return {"pod": agent.pod, "applied": applied, "ran": True}

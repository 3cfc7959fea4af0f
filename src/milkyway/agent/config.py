"""What one agent process serves: the type's agent declaration plus the pod's identity."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from milkyway.kube.agent_contract import (
    AGENT_CONFIG_DIR,
    AGENT_CONFIG_FILE,
    AGENT_KEYS_DIR,
    AGENT_PORT,
)
from milkyway.model.agent_spec import AgentSpec

AGENT_FILE = AGENT_CONFIG_FILE
DEFAULT_CONFIG_DIR = Path(AGENT_CONFIG_DIR)
DEFAULT_KEYS_DIR = Path(AGENT_KEYS_DIR)
DEFAULT_PORT = AGENT_PORT


class AgentConfigError(Exception):
    """The agent cannot start with this configuration; the message says what to fix."""


@dataclass(frozen=True)
class AgentSettings:
    spec: AgentSpec
    namespace: str
    pod: str
    host: str
    """Address of the data system's ports: the pod's own address."""
    listen: str
    port: int
    config_dir: Path
    keys_dir: Path
    watched_config: tuple[str, ...] = field(default=())
    """Config files whose hash the agent reports (every file of the config dir but its own)."""


def load_settings(
    config_dir: Path = DEFAULT_CONFIG_DIR,
    keys_dir: Path = DEFAULT_KEYS_DIR,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    listen: str | None = None,
) -> AgentSettings:
    environ = os.environ if env is None else env
    path = config_dir / AGENT_FILE
    try:
        raw = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError) as error:
        raise AgentConfigError(f"{path}: cannot read the agent declaration: {error}") from None
    try:
        spec = AgentSpec.model_validate(raw)
    except ValueError as error:
        raise AgentConfigError(f"{path}: invalid agent declaration: {error}") from None
    pod = environ.get("MILKYWAY_POD_NAME") or environ.get("HOSTNAME") or ""
    namespace = environ.get("MILKYWAY_POD_NAMESPACE", "")
    if not pod or not namespace:
        raise AgentConfigError(
            "MILKYWAY_POD_NAME and MILKYWAY_POD_NAMESPACE must name the pod "
            "(the rendered pod sets them from the downward API)"
        )
    host = environ.get("MILKYWAY_POD_IP") or "127.0.0.1"
    return AgentSettings(
        spec=spec,
        namespace=namespace,
        pod=pod,
        host=host,
        listen=listen or environ.get("MILKYWAY_AGENT_LISTEN") or host,
        port=port if port is not None else int(environ.get("MILKYWAY_AGENT_PORT", DEFAULT_PORT)),
        config_dir=config_dir,
        keys_dir=keys_dir,
    )

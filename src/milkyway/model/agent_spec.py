"""What the sidecar agent of a ComponentType's members checks, exposes and may do.

A ComponentType declares it once (``spec.agent``); the renderer writes it into every
zone's ConfigMap as ``agent.json`` and the agent of each member pod reads it from there.
Nothing an agent serves comes from outside this declaration: a log file that is not
declared cannot be read, an action that is not declared cannot be run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from milkyway.model.base import DnsLabel, Model

ABSOLUTE_PATH = r"^/[^\n\x00]*$"


class AgentCheck(Model):
    """One health or data-system check the agent runs on a period.

    ``tcp``: the port accepts connections; ``http``: ``path`` on the port answers 2xx/3xx;
    ``exec``: ``command`` exits 0; ``zookeeper``: ``ruok``/``mntr``/``srvr`` on the client
    port (mode, followers, outstanding requests, latency); ``etcd``: ``/health`` and the
    member list on the client port.
    """

    name: DnsLabel
    """Name shown in findings and metrics."""
    kind: Literal["tcp", "http", "exec", "zookeeper", "etcd"]
    """What the check does."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Port on the pod's own address (tcp, http, zookeeper, etcd)."""
    path: str = "/"
    """HTTP path (http)."""
    command: list[str] | None = None
    """Command run by the agent (exec)."""
    period_seconds: float = Field(default=10, gt=0, le=3600)
    """Time between two runs."""
    timeout_seconds: float = Field(default=3, gt=0, le=300)
    """Time after which one run counts as failed."""
    critical: bool = True
    """False for checks whose failure degrades a member without making it unhealthy."""

    @model_validator(mode="after")
    def _needs(self) -> AgentCheck:
        if self.kind == "exec" and not self.command:
            raise ValueError(f"check {self.name!r}: kind exec needs command")
        if self.kind != "exec" and self.port is None:
            raise ValueError(f"check {self.name!r}: kind {self.kind} needs port")
        return self


class AgentLogSource(Model):
    """Log files the agent may serve: one file (``path``) or the files directly inside a
    directory (``directory``); symlinks that lead outside are refused."""

    name: DnsLabel
    """Name used in ``/v1/logs?file=NAME`` (or ``NAME/FILE`` for a directory)."""
    path: str | None = Field(default=None, pattern=ABSOLUTE_PATH)
    """Absolute path of one log file."""
    directory: str | None = Field(default=None, pattern=ABSOLUTE_PATH)
    """Absolute path of a directory of log files."""

    @model_validator(mode="after")
    def _one_of(self) -> AgentLogSource:
        if (self.path is None) == (self.directory is None):
            raise ValueError(f"log source {self.name!r} needs exactly one of path or directory")
        for value in (self.path, self.directory):
            if value is not None and ".." in value.split("/"):
                raise ValueError(f"log source {self.name!r}: '..' is not allowed in {value!r}")
        return self


class AgentAction(Model):
    """An admin action the agent runs when asked with a valid operator-signed token."""

    name: DnsLabel
    """Name used in ``POST /v1/actions/NAME``."""
    description: str = ""
    """What the action does, for people choosing it."""
    kind: Literal["exec", "zookeeper"] = "exec"
    """``exec``: run ``command``; ``zookeeper``: send the four-letter word ``word`` to
    ``port`` and return the answer."""
    command: list[str] | None = None
    """Command the agent runs (exec)."""
    word: str | None = Field(default=None, pattern=r"^[a-z]{4}$")
    """Four-letter word (zookeeper)."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Port of the four-letter word (zookeeper)."""
    one_shot: bool = False
    """True for actions that must not run twice for one token (restarts, snapshots)."""
    timeout_seconds: float = Field(default=30, gt=0, le=3600)
    """Time after which the action is stopped and reported as failed."""

    @model_validator(mode="after")
    def _needs(self) -> AgentAction:
        if self.kind == "exec" and not self.command:
            raise ValueError(f"action {self.name!r}: kind exec needs command")
        if self.kind == "zookeeper" and (self.word is None or self.port is None):
            raise ValueError(f"action {self.name!r}: kind zookeeper needs word and port")
        return self


class DiskThresholds(Model):
    """Usage thresholds of one volume, in percent of its size."""

    warning_percent: float = Field(default=80, gt=0, le=100)
    critical_percent: float = Field(default=90, gt=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> DiskThresholds:
        if self.warning_percent > self.critical_percent:
            raise ValueError(
                f"warningPercent {self.warning_percent} is above criticalPercent "
                f"{self.critical_percent}; the warning must come first"
            )
        return self


class AgentVolume(Model):
    """A volume whose usage and health the agent watches."""

    name: DnsLabel
    """Volume name in findings, metrics and alerts (``data``, ``logs``)."""
    path: str = Field(pattern=ABSOLUTE_PATH)
    """Where the volume is mounted in the agent's container."""
    thresholds: DiskThresholds = Field(default_factory=DiskThresholds)
    """When usage becomes a warning and a critical alert."""


class SecretGenerator(Model):
    """How Milkyway makes a value for a generated Secret: ``length`` characters drawn
    from ``alphabet`` by the operating system's cryptographic random source, written
    under ``key``. A rotation keeps the value it replaces under ``<key>.previous`` until
    every member has applied the new one, so peers and clients can switch over."""

    key: str = Field(default="password", pattern=r"^[A-Za-z0-9_][-._A-Za-z0-9]{0,200}$")
    """File name of the value in the mounted Secret."""
    length: int = Field(default=32, ge=16, le=1024)
    """Characters in the value (at least 16: a shorter secret is guessable)."""
    alphabet: Literal["alphanumeric", "hex", "base64url"] = "alphanumeric"
    """Characters drawn from: ``alphanumeric`` (a-z, A-Z, 0-9: safe in JAAS files and
    URLs), ``hex`` or ``base64url``."""

    @model_validator(mode="after")
    def _no_previous_suffix(self) -> SecretGenerator:
        if self.key.endswith(".previous"):
            raise ValueError(
                f"generate.key {self.key!r} ends with '.previous', the suffix a rotation "
                "uses for the old value; choose another key"
            )
        return self


class AgentSecret(Model):
    """A mounted Secret whose new version the agent applies by running an action.

    With ``generate`` Milkyway owns the Secret: it is named
    ``<application>-<component>-<name>``, created with a fresh value when the first zone
    is applied, mounted read-only at ``path`` in the data system's and the agent's
    containers of every member, and rotated by ``milkyway rotate-secret``."""

    name: DnsLabel
    """Name of the secret in status and metrics."""
    path: str = Field(pattern=ABSOLUTE_PATH)
    """Where the Secret is mounted in the agent's container."""
    reload_action: DnsLabel
    """Action run when the Secret's files change; its success marks the version applied."""
    generate: SecretGenerator | None = None
    """Milkyway creates, mounts and rotates this Secret (absent: the Secret is mounted
    by other means and only watched)."""


class AgentSpec(Model):
    """Everything the sidecar agent of this type's members does."""

    checks: list[AgentCheck] = Field(default_factory=list)
    """Health and data-system checks."""
    logs: list[AgentLogSource] = Field(default_factory=list)
    """Log files the agent may serve."""
    actions: list[AgentAction] = Field(default_factory=list)
    """Admin actions, each run only with a valid token."""
    volumes: list[AgentVolume] = Field(default_factory=list)
    """Volumes watched for usage and health."""
    secrets: list[AgentSecret] = Field(default_factory=list)
    """Mounted Secrets applied by an action when they change (rotation)."""
    config_reload_action: DnsLabel | None = None
    """Action that makes the data system read its changed config files without a restart
    (hot reload); its success marks the config hash applied."""
    on_critical_disk: Literal["replace", "alert"] = "replace"
    """What the operator does when a volume reaches its critical threshold or fails:
    replace the member onto a new volume, or only alert."""

    @model_validator(mode="after")
    def _unique(self) -> AgentSpec:
        for label, names in (
            ("checks", [c.name for c in self.checks]),
            ("logs", [s.name for s in self.logs]),
            ("actions", [a.name for a in self.actions]),
            ("volumes", [v.name for v in self.volumes]),
            ("secrets", [s.name for s in self.secrets]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"duplicate agent {label}: {', '.join(duplicates)}")
        actions = {a.name for a in self.actions}
        wanted = [(f"secret {s.name!r}", s.reload_action) for s in self.secrets]
        if self.config_reload_action is not None:
            wanted.append(("configReloadAction", self.config_reload_action))
        for owner, action in wanted:
            if action not in actions:
                raise ValueError(f"{owner} names action {action!r}, which is not declared")
        return self

"""What a server is configured with; every field has a command-line option."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milkyway.server.authn.keystone import KeystoneSettings
from milkyway.server.authn.ldap import LdapSettings


@dataclass
class ServerSettings:
    kubeconfig: str | Path | Mapping[str, Any]
    context: str | None = None
    audit_url: str = "sqlite:///milkyway-audit.db"
    session_secret: bytes | None = None
    session_ttl_seconds: float = 8 * 3600
    static_tokens_secret: str = ""  # NAMESPACE/NAME of a Secret with tokens.csv
    ldap: LdapSettings | None = None
    keystone: KeystoneSettings | None = None
    keystone_tokens: bool = True
    cors_origins: list[str] = field(default_factory=list)
    login_attempts: int = 10
    login_per_seconds: float = 60.0
    page_limit_max: int = 500
    record_runs: bool = True
    """Append an audit record for each FlowRun a request caused (see
    :mod:`milkyway.server.audit.runs`)."""

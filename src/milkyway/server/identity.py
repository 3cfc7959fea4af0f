"""Who a request comes from, once an authenticator has proven it."""

from __future__ import annotations

from dataclasses import dataclass

AUTHENTICATED_GROUP = "system:authenticated"


@dataclass(frozen=True)
class Identity:
    """A proven user: ``method`` says how (ldap, keystone, static-token, session)."""

    name: str
    groups: tuple[str, ...] = ()
    method: str = ""

"""Who a request comes from, once an authenticator has proven it."""

from __future__ import annotations

from dataclasses import dataclass, field

AUTHENTICATED_GROUP = "system:authenticated"


@dataclass(frozen=True)
class Identity:
    """A proven user: ``method`` says how (ldap, keystone, static-token, session)."""

    name: str
    groups: tuple[str, ...] = ()
    method: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def with_method(self, method: str) -> Identity:
        return Identity(self.name, self.groups, method, dict(self.extra))

"""Sign-in against an LDAP directory: find the user, bind as them, read their groups.

The server searches ``user_base`` for exactly one entry matching ``user_filter`` and the
login attribute (a service account, ``bind_dn``, or an anonymous bind does the search),
then proves the password with a simple bind as that entry, then collects the ``cn`` of
every group under ``group_base`` that lists the user (``member``/``uniqueMember`` by DN,
``memberUid`` by name). A user the filter leaves out — for instance
``(!(employeeType=disabled))`` — cannot sign in. An empty password is refused before any
bind: LDAP treats it as an anonymous bind, which always "succeeds".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import ldap3
from ldap3.core.exceptions import LDAPBindError, LDAPException, LDAPSocketOpenError
from ldap3.utils.conv import escape_filter_chars

from milkyway.server.authn import AuthUnavailable
from milkyway.server.identity import Identity


@dataclass(frozen=True)
class LdapSettings:
    url: str
    user_base: str
    group_base: str
    bind_dn: str = ""
    bind_password: str = ""
    login_attribute: str = "uid"
    user_filter: str = "(objectClass=inetOrgPerson)"
    group_filter: str = "(|(member={dn})(uniqueMember={dn})(memberUid={username}))"
    group_name_attribute: str = "cn"
    timeout_seconds: float = 5.0


class LdapAuthenticator:
    name = "ldap"

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        # ldap3 wants scheme://host:port; ldap://host:port/ (as slapd -h prints) is common
        url = settings.url.rstrip("/")
        self._server = ldap3.Server(url, connect_timeout=max(1, int(settings.timeout_seconds)))

    async def authenticate(self, username: str, password: str) -> Identity | None:
        if not username or not password:
            return None
        return await asyncio.to_thread(self._authenticate, username, password)

    def _connection(self, user: str | None, password: str | None) -> ldap3.Connection:
        return ldap3.Connection(
            self._server,
            user=user,
            password=password,
            auto_bind=ldap3.AUTO_BIND_NO_TLS,
            receive_timeout=max(1, int(self.settings.timeout_seconds)),
            raise_exceptions=False,
        )

    def _authenticate(self, username: str, password: str) -> Identity | None:
        s = self.settings
        try:
            service = self._connection(s.bind_dn or None, s.bind_password or None)
        except LDAPBindError as exc:
            raise AuthUnavailable(f"LDAP {s.url}: the service bind as {s.bind_dn} failed") from exc
        except (LDAPSocketOpenError, LDAPException) as exc:
            raise AuthUnavailable(f"LDAP {s.url} cannot be reached: {type(exc).__name__}") from exc
        try:
            wanted = f"(&{s.user_filter}({s.login_attribute}={escape_filter_chars(username)}))"
            service.search(s.user_base, wanted, attributes=[s.login_attribute])
            if len(service.entries) != 1:
                return None
            dn = service.entries[0].entry_dn
            try:
                user_conn = self._connection(dn, password)
            except LDAPBindError:
                return None
            user_conn.unbind()
            groups_filter = s.group_filter.format(
                dn=escape_filter_chars(dn), username=escape_filter_chars(username)
            )
            service.search(s.group_base, groups_filter, attributes=[s.group_name_attribute])
            groups = sorted(
                str(value)
                for entry in service.entries
                for value in entry[s.group_name_attribute].values
            )
        finally:
            service.unbind()
        return Identity(username, tuple(groups), "ldap")

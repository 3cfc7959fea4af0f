"""Authenticators: several at once, tried in order.

Password authenticators (LDAP, Keystone) turn a user name and password into an
:class:`~milkyway.server.identity.Identity`; token authenticators (server sessions, static
tokens from a Secret, Keystone tokens) turn a bearer token into one. None of them logs a
password or a token.
"""

from __future__ import annotations

from typing import Protocol

from milkyway.server.identity import Identity


class PasswordAuthenticator(Protocol):
    """Checks a user name and password; None when they do not prove an enabled user."""

    name: str

    async def authenticate(self, username: str, password: str) -> Identity | None: ...


class TokenAuthenticator(Protocol):
    """Maps a bearer token to an identity; None when the token is not one of its kind."""

    name: str

    async def authenticate_token(self, token: str) -> Identity | None: ...


class AuthUnavailable(Exception):
    """An identity backend could not be reached; the message says which and why."""

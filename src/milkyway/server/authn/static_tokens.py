"""Static bearer tokens for automation, kept in a Kubernetes Secret.

The Secret's ``tokens.csv`` key holds lines in kube-apiserver's token file format,
``token,user,uid,"group1,group2"``. The server re-reads the Secret at most every
``refresh_seconds``, so adding or revoking a token needs no restart.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from milkyway.server.authn import AuthUnavailable
from milkyway.server.identity import Identity

TOKENS_KEY = "tokens.csv"
log = logging.getLogger("milkyway.server")


def parse_tokens(text: str) -> dict[bytes, Identity]:
    """Token digests mapped to identities; a malformed line is an error naming it."""
    out: dict[bytes, Identity] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 2 or not row[1].strip():
            raise ValueError(
                f'{TOKENS_KEY} line {number}: expected token,user[,uid[,"group1,group2"]]'
            )
        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
        out[_digest(row[0].strip())] = Identity(row[1].strip(), groups, "static-token")
    return out


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class StaticTokens:
    """Bearer tokens read by ``load`` (the Secret's ``tokens.csv`` text)."""

    name = "static-token"

    def __init__(
        self, load: Callable[[], Awaitable[str]], *, refresh_seconds: float = 10.0
    ) -> None:
        self._load = load
        self._refresh = refresh_seconds
        self._tokens: dict[bytes, Identity] = {}
        self._loaded_at = float("-inf")

    async def authenticate_token(self, token: str) -> Identity | None:
        if time.monotonic() - self._loaded_at > self._refresh:
            try:
                self._tokens = parse_tokens(await self._load())
            except (AuthUnavailable, ValueError) as exc:
                # keep the tokens read last and try again after the period
                self._loaded_at = time.monotonic()
                if not self._tokens:
                    raise AuthUnavailable(f"static tokens: {exc}") from exc
                log.warning("static tokens kept from the last read: %s", exc)
            self._loaded_at = time.monotonic()
        wanted = _digest(token)
        found = None
        for digest, identity in self._tokens.items():
            if hmac.compare_digest(digest, wanted):
                found = identity
        return found


def secret_loader(
    client_factory: Callable[[], Any], namespace: str, name: str
) -> Callable[[], Awaitable[str]]:
    """Reads ``tokens.csv`` from Secret ``namespace/name`` with the server's own client."""
    from lightkube import ApiError
    from lightkube.resources.core_v1 import Secret

    async def load() -> str:
        client = client_factory()
        try:
            secret = await client.get(Secret, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return ""
            raise AuthUnavailable(
                f"cannot read Secret {namespace}/{name}: {exc.status.message}"
            ) from exc
        data = secret.data or {}
        if TOKENS_KEY not in data:
            return ""
        return base64.b64decode(data[TOKENS_KEY]).decode()

    return load

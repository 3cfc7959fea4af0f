"""Sign-in and token validation against OpenStack Keystone (identity API v3).

A password sign-in asks Keystone for a token (``POST /v3/auth/tokens``), which also proves
that the user exists, is enabled and has that password; the user's Keystone groups become
Milkyway groups, and with a project scope each role on it becomes ``PROJECT:ROLE``. A
Keystone token given as a bearer token is validated with ``GET /v3/auth/tokens``; answers
are cached for ``cache_seconds`` (never past the token's expiry) to spare Keystone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import httpx

from milkyway.server.authn import AuthUnavailable
from milkyway.server.identity import Identity


@dataclass(frozen=True)
class KeystoneSettings:
    url: str  # e.g. http://keystone:5000/v3
    user_domain: str = "Default"
    project: str = ""
    project_domain: str = "Default"
    cache_seconds: float = 60.0
    timeout_seconds: float = 10.0


class KeystoneAuthenticator:
    name = "keystone"

    def __init__(self, settings: KeystoneSettings) -> None:
        self.settings = settings
        self._http = httpx.AsyncClient(
            base_url=settings.url.rstrip("/"), timeout=settings.timeout_seconds, trust_env=False
        )
        self._cache: dict[bytes, tuple[float, Identity]] = {}

    async def close(self) -> None:
        await self._http.aclose()

    async def authenticate(self, username: str, password: str) -> Identity | None:
        if not username or not password:
            return None
        s = self.settings
        auth: dict[str, Any] = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": username,
                        "domain": {"name": s.user_domain},
                        "password": password,
                    }
                },
            }
        }
        if s.project:
            auth["scope"] = {"project": {"name": s.project, "domain": {"name": s.project_domain}}}
        response = await self._call("POST", "/auth/tokens", json={"auth": auth})
        if response.status_code in (401, 403, 404):
            return None
        if response.status_code != 201:
            raise AuthUnavailable(f"Keystone answered {response.status_code} to a sign-in")
        token = response.headers.get("X-Subject-Token", "")
        return await self._identity(token, response.json().get("token") or {})

    async def authenticate_token(self, token: str) -> Identity | None:
        if not token or token.count(".") == 2:  # a JWT is the server's own session
            return None
        key = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        response = await self._call(
            "GET", "/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}
        )
        if response.status_code in (401, 403, 404):
            return None
        if response.status_code != 200:
            raise AuthUnavailable(f"Keystone answered {response.status_code} to a token check")
        body = response.json().get("token") or {}
        identity = await self._identity(token, body)
        lifetime = min(self.settings.cache_seconds, _seconds_left(body.get("expires_at")))
        if lifetime > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + lifetime, identity)
        return identity

    def forget_cache(self) -> None:
        self._cache.clear()

    async def _identity(self, token: str, body: dict[str, Any]) -> Identity:
        user = body.get("user") or {}
        groups: list[str] = []
        response = await self._call(
            "GET", f"/users/{user.get('id', '')}/groups", headers={"X-Auth-Token": token}
        )
        if response.status_code == 200:
            groups = [g["name"] for g in response.json().get("groups", []) if g.get("name")]
        project = (body.get("project") or {}).get("name")
        if project:
            groups += [f"{project}:{r['name']}" for r in body.get("roles") or [] if r.get("name")]
        return Identity(str(user.get("name", "")), tuple(sorted(set(groups))), "keystone")

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AuthUnavailable(
                f"Keystone at {self.settings.url} cannot be reached: {type(exc).__name__}"
            ) from exc


def _seconds_left(expires_at: str | None) -> float:
    if not expires_at:
        return 0.0
    try:
        when = dt.datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (when - dt.datetime.now(dt.UTC)).total_seconds()

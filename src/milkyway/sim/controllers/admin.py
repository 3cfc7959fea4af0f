"""The admin endpoint through which ``milkyway sim fault`` reaches a running simulator.

It listens on its own 127.0.0.1 port, not on a cluster's API server, so that cutting a
cluster off cannot cut off the way to lift the fault. Paths live under
``/_milkyway/v1/`` (no Kubernetes path starts with an underscore) and every request needs
the simulator's admin bearer token. Where to find it is written next to the kubeconfig
(``<kubeconfig>.admin.json``, mode 0600).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.faults import Faults

PREFIX = "/_milkyway/v1"


def admin_file(kubeconfig: Path) -> Path:
    return kubeconfig.with_name(kubeconfig.name + ".admin.json")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, indent=2, default=str), status=status, content_type="application/json"
    )


class AdminServer:
    def __init__(self, faults: Faults, token: str) -> None:
        self.faults = faults
        self.token = token
        self.url = ""
        self._runner: web.AppRunner | None = None

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get(f"{PREFIX}/faults", self._list)
        app.router.add_post(f"{PREFIX}/faults", self._inject)
        app.router.add_delete(f"{PREFIX}/faults/{{id}}", self._lift)
        app.router.add_delete(f"{PREFIX}/faults", self._lift_all)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            return _json({"error": "a valid admin bearer token is required"}, 401)
        try:
            return await handler(request)
        except ValueError as err:
            return _json({"error": str(err)}, 400)
        except ApiError as err:
            return _json({"error": err.message}, err.code)

    async def _list(self, _request: web.Request) -> web.Response:
        return _json({"faults": [f.to_dict() for f in self.faults.faults.values()]})

    async def _inject(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError as err:
            raise ValueError(f"the request body is not JSON: {err}") from None
        if not isinstance(body, dict) or "kind" not in body or "cluster" not in body:
            raise ValueError('the body needs "kind" and "cluster", e.g. {"kind": "lose-node", ...}')
        params = {k: v for k, v in body.items() if k not in ("kind", "cluster")}
        fault = await self.faults.inject(body["kind"], body["cluster"], **params)
        return _json(fault.to_dict(), 201)

    async def _lift(self, request: web.Request) -> web.Response:
        fault = await self.faults.lift(request.match_info["id"])
        return _json(fault.to_dict())

    async def _lift_all(self, _request: web.Request) -> web.Response:
        lifted = await self.faults.lift_all()
        return _json({"faults": [f.to_dict() for f in lifted]})

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        bound = server.sockets[0].getsockname()[1] if server is not None else port  # type: ignore[union-attr]
        self.url = f"http://{host}:{bound}{PREFIX}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

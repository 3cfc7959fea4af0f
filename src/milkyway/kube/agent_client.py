"""Talking to a member pod's sidecar agent through its cluster's API server.

Used by the operator (health, hot reload, secret rotation) and by the ``milkyway``
command (status, logs, actions); an action carries a token signed with the namespace's
agent signing key and naming who asked for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from lightkube import AsyncClient

from milkyway.kube.agent_contract import AGENT_PORT, AGENT_TOKEN_HEADER
from milkyway.kube.agent_keys import ensure_signing_key
from milkyway.kube.pod_proxy import PodProxyError, pod_request, pod_stream
from milkyway.security.agent_tokens import pod_audience, sign_action_token

TOKEN_HEADER = AGENT_TOKEN_HEADER


class AgentError(Exception):
    """The agent answered with a refusal or failure; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AgentClient:
    client: AsyncClient
    namespace: str
    pod: str
    port: int = AGENT_PORT

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await pod_request(
                self.client, self.namespace, self.pod, self.port, method, path, **kwargs
            )
        except PodProxyError as error:
            raise AgentError(error.status or 503, str(error)) from None
        try:
            body = response.json()
        except ValueError:
            raise AgentError(response.status_code, response.text[:200]) from None
        if response.status_code >= 400 and isinstance(body, Mapping) and "detail" in body:
            raise AgentError(response.status_code, str(body["detail"]))
        return body

    async def status(self) -> dict[str, Any]:
        return dict(await self._json("GET", "/v1/status", within=10))

    async def metrics(self) -> str:
        try:
            response = await pod_request(
                self.client, self.namespace, self.pod, self.port, "GET", "/metrics", within=10
            )
        except PodProxyError as error:
            raise AgentError(error.status or 503, str(error)) from None
        return response.text

    async def log_lines(
        self,
        file: str,
        tail: int | None = None,
        since: str | None = None,
        follow: bool = False,
    ) -> AsyncIterator[str]:
        params = {"file": file}
        if tail is not None:
            params["tail"] = str(tail)
        if since is not None:
            params["since"] = since
        if follow:
            params["follow"] = "true"
        try:
            async with pod_stream(
                self.client, self.namespace, self.pod, self.port, "/v1/logs", params=params
            ) as response:
                if response.status_code >= 400:
                    body = response.json()
                    raise AgentError(response.status_code, str(body.get("detail", body)))
                async for line in response.aiter_lines():
                    yield line
        except PodProxyError as error:
            raise AgentError(error.status or 503, str(error)) from None

    async def run_action(self, action: str, requester: str) -> dict[str, Any]:
        """Run ``action`` on the pod as ``requester``; the agent's report (``ok``,
        ``output``, ``config``) — also when the action itself failed (``ok`` false)."""
        key = await ensure_signing_key(self.client, self.namespace)
        token = sign_action_token(
            key.private_pem,
            key.key_id,
            audience=pod_audience(self.namespace, self.pod),
            action=action,
            requester=requester,
        )
        try:
            response = await pod_request(
                self.client,
                self.namespace,
                self.pod,
                self.port,
                "POST",
                f"/v1/actions/{action}",
                headers={TOKEN_HEADER: token},
                within=120,
            )
        except PodProxyError as error:
            raise AgentError(error.status or 503, str(error)) from None
        body = response.json()
        if response.status_code in (401, 403, 404):
            raise AgentError(response.status_code, str(body.get("detail", body)))
        return dict(body)

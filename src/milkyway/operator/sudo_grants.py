"""The operator's half of ``milkyway sudo``: the ``milkyway.sudo-grant`` task that creates
an approved grant's RoleBinding, and the sweep that deletes grants once they expire.

The task trusts nothing a user could have written: it grants only what the server signed
(:func:`milkyway.model.sudo.proof`), to the run's requester, and only when the run's status
— written by engines alone — shows every signed gate approved. The expiry counts from the
last approval, so a step run twice (at least once) never extends or renews a grant.

The sweep is level-based: it lists every grant and deletes the expired ones, at start and
then at each expiry (at least every ``interval`` seconds), so a grant that expired while
no operator ran is removed by the next one to lead.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.rbac_authorization_v1 import RoleBinding
from pydantic import BaseModel, Field

from milkyway.flows.tasks import FatalError, TaskContext, TaskRegistry
from milkyway.kube.resources import FLOWRUN
from milkyway.model import sudo

log = logging.getLogger("milkyway.operator.sudo")


class GrantParams(BaseModel):
    model_config = {"extra": "forbid"}

    namespace: str = Field(min_length=1, max_length=63)
    grant: str = Field(min_length=6, max_length=16)
    role: str
    user: str = Field(min_length=1)
    seconds: int = Field(ge=1, le=int(sudo.LONGEST_SECONDS))
    reason: str = ""
    proof: str = Field(min_length=64, max_length=64)


def _approved_at(run: dict[str, Any], gates: list[dict[str, Any]]) -> float:
    """When the last of ``gates`` was approved, per the run's engine-written status;
    :class:`FatalError` unless every one of them passed by approval."""
    status = run.get("status") or {}
    snapshot = status.get("snapshot") or {}
    steps = {}
    for flow in snapshot.values():
        steps.update({s.get("name"): s for s in flow.get("steps") or []})
    nodes = status.get("nodes") or {}
    latest = 0.0
    for gate in gates:
        name = gate.get("name", "")
        recorded = steps.get(name)
        if recorded is None or sudo.gate_terms([recorded]) != sudo.gate_terms([gate]):
            raise FatalError(f"gate {name} of this run is not the one the server asked for")
        decision = (nodes.get(name) or {}).get("decision") or {}
        if (nodes.get(name) or {}).get("phase") != "Succeeded" or decision.get(
            "approved"
        ) is not True:
            raise FatalError(f"gate {name} was not approved")
        latest = max(latest, float(decision.get("at") or 0.0))
    return latest


def register(registry: TaskRegistry, client: AsyncClient, key: Callable[[], bytes | None]) -> None:
    """Put ``milkyway.sudo-grant`` in ``registry``, acting with the operator's ``client``
    and checking proofs with the decision key ``key()`` returns."""

    @registry.task("milkyway.sudo-grant", GrantParams)
    async def grant(params: GrantParams, ctx: TaskContext) -> dict[str, Any]:
        """Create the RoleBinding of an approved sudo grant (once; never after expiry)."""
        secret = key()
        if secret is None:
            raise FatalError("the decision key is not loaded; sudo grants need it")
        if params.role not in sudo.SUDO_ROLES:
            raise FatalError(f"role {params.role} may not be granted by sudo")
        try:
            run = (await client.get(FLOWRUN, ctx.run_id, namespace=params.namespace)).to_dict()
        except ApiError as exc:
            raise FatalError(f"cannot read run {ctx.run_id}: {exc.status.message}") from None
        spec = run.get("spec") or {}
        gates = [dict(g) for g in spec.get("gates") or []]
        expected = sudo.proof(
            secret,
            namespace=params.namespace,
            run=ctx.run_id,
            grant=params.grant,
            role=params.role,
            user=params.user,
            seconds=params.seconds,
            gates=gates,
        )
        if not gates or not hmac.compare_digest(expected, params.proof):
            raise FatalError("this sudo request was not signed by milkyway server; not granted")
        if spec.get("requestedBy") != params.user:
            raise FatalError(f"the run's requester is not {params.user}; not granted")
        approved = _approved_at(run, gates)
        expires = sudo.expiry_after(datetime.fromtimestamp(approved, UTC), params.seconds)
        name = sudo.binding_name(params.grant)
        found = await _get(client, name, params.namespace)
        if found is not None:
            return {"binding": name, "expires": sudo.rfc3339(expires)}
        if expires <= datetime.now(UTC):
            raise FatalError(f"grant {params.grant} expired at {sudo.rfc3339(expires)}")
        manifest = sudo.binding(
            grant=params.grant,
            namespace=params.namespace,
            role=params.role,
            user=params.user,
            reason=params.reason,
            expires=expires,
        )
        try:
            await client.create(RoleBinding.from_dict(manifest), namespace=params.namespace)
        except ApiError as exc:
            if exc.status.code != 409:
                raise
        log.info(
            "sudo grant %s/%s: %s for %s until %s",
            params.namespace,
            params.grant,
            params.role,
            params.user,
            sudo.rfc3339(expires),
        )
        return {"binding": name, "expires": sudo.rfc3339(expires)}


async def _get(client: AsyncClient, name: str, namespace: str) -> Any:
    try:
        return await client.get(RoleBinding, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise


async def remove_expired(client: AsyncClient, now: datetime) -> tuple[list[str], float | None]:
    """Delete every grant expired at ``now``; answer what was deleted and the seconds until
    the next expiry (``None``: no grant left)."""
    removed: list[str] = []
    soonest: float | None = None
    async for item in client.list(RoleBinding, namespace="*", labels={sudo.GRANT_LABEL: None}):
        data = item.to_dict()
        meta = data["metadata"]
        if sudo.expired(data, now):
            try:
                await client.delete(RoleBinding, meta["name"], namespace=meta["namespace"])
            except ApiError as exc:
                if exc.status.code != 404:
                    raise
            removed.append(f"{meta['namespace']}/{meta['name']}")
            log.info("sudo grant %s/%s expired: removed", meta["namespace"], meta["name"])
        else:
            until = sudo.expires_at(data)
            assert until is not None
            left = (until - now).total_seconds()
            soonest = left if soonest is None else min(soonest, left)
    return removed, soonest


async def sweep_expired(client: AsyncClient, interval: float) -> None:
    """Remove expired grants now and at every expiry, for as long as this runs."""
    while True:
        try:
            _, soonest = await remove_expired(client, datetime.now(UTC))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("sudo grant sweep failed, trying again: %s", exc)
            soonest = None
        wait = interval if soonest is None else min(interval, soonest + 0.2)
        await asyncio.sleep(max(wait, 0.1))

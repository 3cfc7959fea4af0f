"""The keys that sign agent action tokens, kept in each member namespace.

Two Secrets per namespace Milkyway manages: ``milkyway-agent-signing`` holds the private
keys (only the operator and administrators may read it: reading it means being able to
run every action), ``milkyway-agent-keys`` the public keys every member pod mounts. A
rotation adds a new key to both, signs with it once the kubelets have had time to publish
the new public key, and drops the old key once no token it signed can still be valid.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret

from milkyway.kube.agent_contract import AGENT_KEYS_SECRET, AGENT_SIGNING_SECRET
from milkyway.kube.clients import FIELD_MANAGER
from milkyway.security.agent_tokens import MAX_LIFETIME_SECONDS, new_signing_key

SIGNING_SECRET = AGENT_SIGNING_SECRET
PUBLIC_SECRET = AGENT_KEYS_SECRET
ACTIVE_KEY = "active"
PUBLISH_DELAY_SECONDS = 90
"""Time for a kubelet to publish a changed Secret to running pods (about its sync
period plus its cache TTL) before a new key signs."""


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    private_pem: bytes
    created_at: float


def _decode(secret: Secret) -> tuple[dict[str, SigningKey], str | None]:
    data = secret.data or {}
    keys: dict[str, SigningKey] = {}
    meta = json.loads(base64.b64decode(data.get("keys.json", "e30=")) or b"{}")
    for key_id, created in meta.items():
        pem = data.get(f"{key_id}.pem")
        if pem:
            keys[key_id] = SigningKey(key_id, base64.b64decode(pem), float(created))
    active = base64.b64decode(data[ACTIVE_KEY]).decode() if ACTIVE_KEY in data else None
    return keys, active


def _encode(keys: dict[str, SigningKey], active: str) -> dict[str, str]:
    meta = {k.key_id: k.created_at for k in keys.values()}
    data = {f"{k.key_id}.pem": base64.b64encode(k.private_pem).decode() for k in keys.values()}
    data["keys.json"] = base64.b64encode(json.dumps(meta, sort_keys=True).encode()).decode()
    data[ACTIVE_KEY] = base64.b64encode(active.encode()).decode()
    return data


def _public_pem(private_pem: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


async def _read(client: AsyncClient, namespace: str) -> tuple[dict[str, SigningKey], str | None]:
    try:
        secret = await client.get(Secret, SIGNING_SECRET, namespace=namespace)
    except ApiError as error:
        if error.status.code == 404:
            return {}, None
        raise
    return _decode(secret)


async def _write(
    client: AsyncClient, namespace: str, keys: dict[str, SigningKey], active: str
) -> None:
    labels = {"app.kubernetes.io/managed-by": "milkyway"}
    private = Secret(
        metadata=ObjectMeta(name=SIGNING_SECRET, namespace=namespace, labels=labels),
        type="Opaque",
        data=_encode(keys, active),
    )
    public = Secret(
        metadata=ObjectMeta(name=PUBLIC_SECRET, namespace=namespace, labels=labels),
        type="Opaque",
        data={
            f"{k.key_id}.pub": base64.b64encode(_public_pem(k.private_pem)).decode()
            for k in keys.values()
        },
    )
    for secret in (public, private):
        await client.apply(secret, field_manager=FIELD_MANAGER, force=True)


async def ensure_signing_key(
    client: AsyncClient, namespace: str, now: float | None = None
) -> SigningKey:
    """The key to sign with in ``namespace``, creating the first one if there is none.

    A namespace's first key signs at once (no pod can hold an older key); keys created by
    a rotation wait :data:`PUBLISH_DELAY_SECONDS` before they sign."""
    moment = time.time() if now is None else now
    keys, active = await _read(client, namespace)
    if active in keys:
        newest = max(keys.values(), key=lambda k: k.created_at)
        if newest.key_id != active and moment - newest.created_at >= PUBLISH_DELAY_SECONDS:
            await _write(client, namespace, keys, newest.key_id)
            return newest
        return keys[active]  # type: ignore[index]
    key_id, private, _public = new_signing_key()
    key = SigningKey(key_id, private, moment)
    await _write(client, namespace, {key_id: key}, key_id)
    return key


async def rotate_signing_key(
    client: AsyncClient, namespace: str, now: float | None = None
) -> list[str]:
    """Add a new key (it signs after the publish delay) and drop keys that neither sign
    nor can have signed a still-valid token; the key ids kept."""
    moment = time.time() if now is None else now
    keys, active = await _read(client, namespace)
    key_id, private, _public = new_signing_key()
    keys[key_id] = SigningKey(key_id, private, moment)
    if active not in keys:
        active = key_id
    newest_signing = keys[active]
    keep = {
        k.key_id: k
        for k in keys.values()
        if k.key_id in (active, key_id)
        or k.created_at >= newest_signing.created_at
        or moment - newest_signing.created_at < MAX_LIFETIME_SECONDS + PUBLISH_DELAY_SECONDS
    }
    await _write(client, namespace, keep, active)
    return sorted(keep)

"""The decision key: a Secret in ``milkyway-system`` that ``milkyway server`` signs
approval decisions with and the operator's engines verify them with.

Whichever starts first creates it (random, 32 bytes); the other reads it. Only the
server's and the operator's service accounts may read it (deploy/rbac), so nobody else
can sign a decision.
"""

from __future__ import annotations

import base64
import secrets

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret

from milkyway.security.decision_proof import KEY_BYTES

NAMESPACE = "milkyway-system"
NAME = "milkyway-decision-key"
FIELD = "key"


async def decision_key(client: AsyncClient, *, create: bool = True) -> bytes:
    """The key, created first when missing and ``create`` is set."""
    for _ in range(3):
        try:
            secret = await client.get(Secret, NAME, namespace=NAMESPACE)
        except ApiError as exc:
            if exc.status.code != 404 or not create:
                raise
        else:
            value = base64.b64decode((secret.data or {}).get(FIELD, ""))
            if len(value) < KEY_BYTES:
                raise ValueError(
                    f"secret {NAMESPACE}/{NAME} has no {KEY_BYTES}-byte {FIELD!r}; delete it "
                    "and restart milkyway server and the operator to make a new one"
                )
            return value
        fresh = Secret(
            metadata=ObjectMeta(
                name=NAME,
                namespace=NAMESPACE,
                labels={"app.kubernetes.io/part-of": "milkyway"},
            ),
            data={FIELD: base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()},
        )
        try:
            await client.create(fresh)
        except ApiError as exc:
            if exc.status.code != 409:
                raise
    raise RuntimeError(f"secret {NAMESPACE}/{NAME} could neither be read nor created")

"""The signature ``milkyway server`` puts on an approval decision it writes on a FlowRun.

Who may write a FlowRun's spec (editors steering a run) could otherwise write a decision
naming anyone as its actor. The server signs each decision it accepted from a signed-in
user with a key only it and the operator can read, over everything the decision says and
the run it is for (namespace, name and uid, so it cannot be replayed onto another run);
the engine counts a decision on a gate that requires proof only when the signature holds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence

KEY_BYTES = 32


def _message(
    namespace: str,
    run: str,
    uid: str,
    request_id: str,
    op: str,
    actor: str,
    groups: Sequence[str],
    step: str,
    reason: str,
) -> bytes:
    fields = [namespace, run, uid, request_id, op, actor, sorted(groups), step, reason]
    return json.dumps(fields, separators=(",", ":")).encode()


def sign_decision(
    key: bytes,
    *,
    namespace: str,
    run: str,
    uid: str,
    request_id: str,
    op: str,
    actor: str,
    groups: Sequence[str],
    step: str,
    reason: str,
) -> str:
    """Hex HMAC-SHA256 of the decision."""
    message = _message(namespace, run, uid, request_id, op, actor, groups, step, reason)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def decision_holds(
    key: bytes,
    proof: str,
    *,
    namespace: str,
    run: str,
    uid: str,
    request_id: str,
    op: str,
    actor: str,
    groups: Sequence[str],
    step: str,
    reason: str,
) -> bool:
    """Whether ``proof`` is the server's signature of exactly this decision."""
    if not proof or not uid:
        return False
    expected = sign_decision(
        key,
        namespace=namespace,
        run=run,
        uid=uid,
        request_id=request_id,
        op=op,
        actor=actor,
        groups=groups,
        step=step,
        reason=reason,
    )
    return hmac.compare_digest(expected, proof)

"""Time-bound elevation (``milkyway sudo``): what a grant is, how it is proven, and when
it is over.

A person asks ``milkyway server`` for a Milkyway role in one namespace for a while, with a
reason. The server starts a ``milkyway-sudo`` FlowRun behind the approval gates of the
ApprovalPolicies that cover ``sudo`` there, and signs what it asked for with the decision
key. Once the gates passed, the operator creates a RoleBinding of the role to a group
that names the grant (``milkyway:sudo:<grant>``), annotated with its owner and expiry,
and deletes it when it expires — level-based, so also after being down at that moment.
Nobody is a member of that group by sign-in: only the server adds it, for the grant's
owner, while the grant lasts, on calls that name the grant; so every use is audited with
it.

Everything here is pure (no I/O), so the rules are tested as they are.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

SUDO_ROLES = ("milkyway-viewer", "milkyway-editor", "milkyway-approver", "milkyway-admin")
"""The ClusterRoles an elevation may bind (the operator may bind no other)."""
FLOW = "milkyway-sudo"
GRANT_LABEL = "milkyway.ebay.com/sudo-grant"
OWNER_ANNOTATION = "milkyway.ebay.com/sudo-user"
EXPIRES_ANNOTATION = "milkyway.ebay.com/sudo-expires"
REASON_ANNOTATION = "milkyway.ebay.com/sudo-reason"
ROLE_ANNOTATION = "milkyway.ebay.com/sudo-role"
GROUP_PREFIX = "milkyway:sudo:"
HEADER = "X-Milkyway-Sudo"
"""The header naming the grant (``NAMESPACE/GRANT``) a call to the server uses."""
LONGEST_SECONDS = 24 * 3600
_GRANT = re.compile(r"^[a-z0-9]{6,16}$")


def binding_name(grant: str) -> str:
    return f"milkyway-sudo-{grant}"


def group_of(grant: str) -> str:
    """The group the grant's RoleBinding binds and the server adds to its owner's calls."""
    return GROUP_PREFIX + grant


def valid_grant_id(grant: str) -> bool:
    return bool(_GRANT.match(grant))


def gate_terms(gates: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """What of each approval gate the proof covers: its name, approvers and quorum."""
    terms = []
    for gate in gates:
        approval = gate.get("approval") or {}
        terms.append(
            [
                gate.get("name", ""),
                sorted(approval.get("users") or []),
                sorted(approval.get("groups") or []),
                int(approval.get("required") or 1),
                bool(approval.get("proof")),
            ]
        )
    return terms


def proof(
    key: bytes,
    *,
    namespace: str,
    run: str,
    grant: str,
    role: str,
    user: str,
    seconds: int,
    gates: Sequence[Mapping[str, Any]],
) -> str:
    """The server's signature over one elevation request and the gates it must pass: the
    operator grants only what it signed, behind exactly those gates."""
    text = json.dumps(
        [namespace, run, grant, role, user, seconds, gate_terms(gates)],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hmac.new(key, b"sudo:" + text.encode(), hashlib.sha256).hexdigest()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def binding(
    *,
    grant: str,
    namespace: str,
    role: str,
    user: str,
    reason: str,
    expires: datetime,
) -> dict[str, Any]:
    """The RoleBinding of an approved grant."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": binding_name(grant),
            "namespace": namespace,
            "labels": {GRANT_LABEL: grant, "app.kubernetes.io/managed-by": "milkyway"},
            "annotations": {
                OWNER_ANNOTATION: user,
                EXPIRES_ANNOTATION: rfc3339(expires),
                REASON_ANNOTATION: reason,
                ROLE_ANNOTATION: role,
            },
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group_of(grant)}
        ],
    }


def expires_at(obj: Mapping[str, Any]) -> datetime | None:
    """A grant RoleBinding's expiry; ``None`` when it is missing or unreadable (such a
    binding is treated as expired)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        return datetime.fromisoformat(annotations[EXPIRES_ANNOTATION].replace("Z", "+00:00"))
    except (KeyError, ValueError, AttributeError):
        return None


def expired(obj: Mapping[str, Any], now: datetime) -> bool:
    until = expires_at(obj)
    return until is None or until <= now


@dataclass(frozen=True)
class Use:
    """A call made with a grant: who, which grant, which role where, until when."""

    grant: str
    namespace: str
    role: str
    until: datetime

    @property
    def group(self) -> str:
        return group_of(self.grant)

    def describe(self) -> str:
        return (
            f"sudo grant {self.namespace}/{self.grant} ({self.role} in {self.namespace} "
            f"until {rfc3339(self.until)})"
        )


class Refused(Exception):
    """A grant that may not be used; the message says why and what to do."""


def check_use(
    obj: Mapping[str, Any] | None, *, user: str, namespace: str, grant: str, now: datetime
) -> Use:
    """The use of ``grant`` by ``user``, or :class:`Refused` (not approved yet, someone
    else's, expired)."""
    where = f"{namespace}/{grant}"
    if obj is None:
        raise Refused(
            f"sudo grant {where} is not in force: it was not approved (yet), or it expired "
            f"and was removed; see `milkyway sudo status {grant} -n {namespace}`"
        )
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if annotations.get(OWNER_ANNOTATION) != user:
        raise Refused(f"sudo grant {where} was not granted to {user}; request your own")
    until = expires_at(obj)
    if until is None or until <= now:
        when = rfc3339(until) if until else "an unknown time"
        raise Refused(f"sudo grant {where} expired at {when}; request a new one with milkyway sudo")
    return Use(grant, namespace, str(annotations.get(ROLE_ANNOTATION, "")), until)


def expiry_after(now: datetime, seconds: int) -> datetime:
    return now.replace(microsecond=0) + timedelta(seconds=seconds)

"""The rules of a sudo grant as pure functions: the policy limit, the proof binding the
request to its gates, and the refusals of a grant's use (not in force, not yours,
expired)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from milkyway.model import sudo
from milkyway.model.approval_policy import ApprovalPolicy, sudo_limit

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
KEY = b"k" * 32


def _policy(namespace: str, name: str, **spec: Any) -> ApprovalPolicy:
    return ApprovalPolicy.model_validate(
        {
            "apiVersion": "milkyway.ebay.com/v1",
            "kind": "ApprovalPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"approvals": {"users": ["carol"]}, **spec},
        }
    )


@pytest.mark.parametrize(
    ("policies", "namespace", "limit"),
    [
        ([], "team-a", None),
        ([_policy("team-a", "p", match={"operations": ["upgrade"]})], "team-a", None),
        ([_policy("team-a", "p", match={"operations": ["sudo"]})], "team-a", 3600.0),
        ([_policy("team-a", "p", match={"operations": ["sudo"]})], "team-b", None),
        (
            [
                _policy(
                    "milkyway-system",
                    "p",
                    match={"operations": ["sudo"]},
                    sudo={"maxDuration": "4h"},
                )
            ],
            "team-b",
            4 * 3600.0,
        ),
        (
            [
                _policy(
                    "milkyway-system",
                    "p",
                    match={"operations": ["sudo"]},
                    sudo={"maxDuration": "4h"},
                ),
                _policy("team-a", "q", match={"operations": ["sudo"]}, sudo={"maxDuration": "30m"}),
            ],
            "team-a",
            1800.0,
        ),
        # A policy for every operation covers sudo too; one narrowed by labels does not
        # (an elevation has no Application whose labels it could match).
        ([_policy("team-a", "p")], "team-a", 3600.0),
        (
            [_policy("team-a", "p", match={"selector": {"matchLabels": {"env": "prod"}}})],
            "team-a",
            None,
        ),
        (
            [
                _policy(
                    "milkyway-system", "p", match={"operations": ["sudo"], "namespaces": ["team-c"]}
                )
            ],
            "team-a",
            None,
        ),
    ],
)
def test_the_longest_elevation_policies_allow(
    policies: list[ApprovalPolicy], namespace: str, limit: float | None
) -> None:
    assert sudo_limit(policies, namespace) == limit


def test_a_limit_over_a_day_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than 24h"):
        _policy("team-a", "p", match={"operations": ["sudo"]}, sudo={"maxDuration": "25h"})


GATE = {
    "name": "approval-p",
    "approval": {"users": ["carol"], "groups": ["sre"], "required": 2, "proof": True},
}


def _proof(**change: Any) -> str:
    fields: dict[str, Any] = {
        "namespace": "team-a",
        "run": "milkyway-sudo-abc123",
        "grant": "abc123",
        "role": "milkyway-admin",
        "user": "alice",
        "seconds": 600,
        "gates": [GATE],
    }
    return sudo.proof(KEY, **{**fields, **change})


def test_the_proof_binds_the_request_and_its_gates() -> None:
    signed = _proof()
    assert _proof() == signed
    weaker = {**GATE, "approval": {**GATE["approval"], "required": 1}}
    for change in (
        {"user": "mallory"},
        {"seconds": 6000},
        {"role": "milkyway-editor"},
        {"gates": []},
        {"gates": [weaker]},
        {"gates": [{**GATE, "approval": {**GATE["approval"], "users": ["mallory"]}}]},
    ):
        assert _proof(**change) != signed, change
    # Defaults left out on the wire sign the same as written out.
    sparse = {"name": "approval-p", "approval": {"users": ["carol"], "proof": True}}
    full = {
        "name": "approval-p",
        "approval": {"users": ["carol"], "groups": [], "required": 1, "proof": True},
    }
    assert _proof(gates=[sparse]) == _proof(gates=[full])


def _binding(expires: datetime, user: str = "alice") -> dict[str, Any]:
    return sudo.binding(
        grant="abc123",
        namespace="team-a",
        role="milkyway-admin",
        user=user,
        reason="INC-1",
        expires=expires,
    )


def test_a_grant_in_force_is_used_with_its_group() -> None:
    use = sudo.check_use(
        _binding(NOW + timedelta(minutes=5)),
        user="alice",
        namespace="team-a",
        grant="abc123",
        now=NOW,
    )
    assert use.group == "milkyway:sudo:abc123"
    assert use.role == "milkyway-admin"
    assert (
        use.describe()
        == "sudo grant team-a/abc123 (milkyway-admin in team-a until 2026-12-07T12:05:00Z)"
    )


@pytest.mark.parametrize(
    ("binding", "user", "message"),
    [
        (None, "alice", "not in force: it was not approved"),
        (_binding(NOW + timedelta(minutes=5)), "bob", "was not granted to bob"),
        (_binding(NOW), "alice", "expired at 2026-12-07T12:00:00Z"),
        (_binding(NOW - timedelta(hours=1)), "alice", "expired at"),
        (
            {"metadata": {"annotations": {sudo.OWNER_ANNOTATION: "alice"}}},
            "alice",
            "expired at an unknown",
        ),
    ],
)
def test_a_grant_that_may_not_be_used_is_refused(
    binding: dict[str, Any] | None, user: str, message: str
) -> None:
    with pytest.raises(sudo.Refused, match=message):
        sudo.check_use(binding, user=user, namespace="team-a", grant="abc123", now=NOW)


def test_the_binding_names_the_grant_group_and_expiry() -> None:
    made = _binding(NOW + timedelta(minutes=5))
    assert made["metadata"]["name"] == "milkyway-sudo-abc123"
    assert made["metadata"]["labels"][sudo.GRANT_LABEL] == "abc123"
    assert made["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "milkyway:sudo:abc123"}
    ]
    assert sudo.expires_at(made) == NOW + timedelta(minutes=5)
    assert not sudo.expired(made, NOW) and sudo.expired(made, NOW + timedelta(minutes=5))

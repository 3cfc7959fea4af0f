"""Which flows need how many approvals from whom: the policy table, and the refusals of
invalid policies (each names the field and the fix)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from milkyway.model.approval_policy import (
    ApprovalPolicy,
    parse_duration,
    required_approvals,
    start_hold,
)


def policy(namespace: str, name: str, spec: dict[str, Any]) -> ApprovalPolicy:
    return ApprovalPolicy.model_validate(
        {
            "apiVersion": "milkyway.ebay.com/v1",
            "kind": "ApprovalPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


POLICIES = [
    policy(
        "milkyway-system",
        "prod-disruptive",
        {
            "match": {
                "operations": ["decommission", "scale-in"],
                "selector": {"matchLabels": {"env": "prod"}},
            },
            "approvals": {"groups": ["sre"], "required": 2, "timeout": "4h"},
        },
    ),
    policy(
        "milkyway-system",
        "kafka-upgrades",
        {
            "match": {
                "operations": ["upgrade"],
                "componentTypes": ["kafka"],
                "namespaces": ["team-a", "team-b"],
            },
            "approvals": {"users": ["bob", "carol"], "timeout": "1h"},
            "autoApproveIn": {
                "schedule": "0 2 * * 6",
                "duration": "4h",
                "timeZone": "Europe/Berlin",
            },
        },
    ),
    policy(
        "team-a",
        "restarts",
        {
            "match": {"operations": ["restart", "replace"]},
            "approvals": {
                "users": ["dave"],
                "groups": ["approvers-a"],
                "timeout": "30m",
                "default": "approve",
            },
        },
    ),
    policy(
        "team-a",
        "gold-config",
        {
            "match": {
                "flows": ["milkyway-config-update"],
                "selector": {
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}]
                },
            },
            "approvals": {"users": ["erin"]},
        },
    ),
    policy(
        "team-b",
        "not-sandbox",
        {
            "match": {
                "componentTypes": ["zookeeper"],
                "selector": {
                    "matchExpressions": [
                        {"key": "env", "operator": "NotIn", "values": ["sandbox"]},
                        {"key": "frozen", "operator": "DoesNotExist"},
                    ]
                },
            },
            "approvals": {"users": ["frank", "gina", "hal"], "required": 3},
        },
    ),
]

WEEKDAY = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday
SATURDAY_IN = datetime(2026, 12, 5, 2, 30, tzinfo=UTC)  # 03:30 in Berlin, window 02-06
SATURDAY_EDGE = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)  # 02:00 in Berlin: opens now
SATURDAY_OUT = datetime(2026, 12, 5, 5, 0, tzinfo=UTC)  # 06:00 in Berlin: closed
SUMMER_IN = datetime(2026, 7, 4, 0, 30, tzinfo=UTC)  # 02:30 in Berlin (CEST)
SUMMER_OUT = datetime(2026, 7, 4, 4, 30, tzinfo=UTC)  # 06:30 in Berlin (CEST)

PROD = {"env": "prod"}
FLOW = {
    "provision": "milkyway-provision",
    "decommission": "milkyway-decommission",
    "scale-in": "milkyway-scale-in",
    "scale-out": "milkyway-scale-out",
    "rolling-upgrade": "milkyway-rolling-upgrade",
    "restart": "milkyway-restart",
    "replace-member": "milkyway-replace-member",
    "config-update": "milkyway-config-update",
    "remediate": "milkyway-remediate",
}

# (operation, namespace, component type, labels, now) -> gates as
# (policy, required, users, groups, timeout, default), and the auto-approved policies.
CASES: list[tuple[str, str, str, dict[str, str], datetime, list[tuple[Any, ...]], list[str]]] = [
    ("provision", "team-a", "kafka", PROD, WEEKDAY, [], []),
    (
        "decommission",
        "team-a",
        "kafka",
        PROD,
        WEEKDAY,
        [("milkyway-system/prod-disruptive", 2, (), ("sre",), 14400.0, "reject")],
        [],
    ),
    ("decommission", "team-a", "kafka", {"env": "dev"}, WEEKDAY, [], []),
    ("decommission", "team-c", "etcd", {}, WEEKDAY, [], []),
    (
        "scale-in",
        "team-c",
        "etcd",
        PROD,
        WEEKDAY,
        [("milkyway-system/prod-disruptive", 2, (), ("sre",), 14400.0, "reject")],
        [],
    ),
    ("scale-out", "team-a", "kafka", PROD, WEEKDAY, [], []),
    (
        "rolling-upgrade",
        "team-a",
        "kafka",
        {},
        WEEKDAY,
        [("milkyway-system/kafka-upgrades", 1, ("bob", "carol"), (), 3600.0, "reject")],
        [],
    ),
    ("rolling-upgrade", "team-a", "zookeeper", {}, WEEKDAY, [], []),
    ("rolling-upgrade", "team-c", "kafka", {}, WEEKDAY, [], []),
    ("rolling-upgrade", "team-a", "kafka", {}, SATURDAY_IN, [], ["milkyway-system/kafka-upgrades"]),
    (
        "rolling-upgrade",
        "team-a",
        "kafka",
        {},
        SATURDAY_EDGE,
        [],
        ["milkyway-system/kafka-upgrades"],
    ),
    (
        "rolling-upgrade",
        "team-b",
        "kafka",
        {},
        SATURDAY_OUT,
        [("milkyway-system/kafka-upgrades", 1, ("bob", "carol"), (), 3600.0, "reject")],
        [],
    ),
    ("rolling-upgrade", "team-a", "kafka", {}, SUMMER_IN, [], ["milkyway-system/kafka-upgrades"]),
    (
        "rolling-upgrade",
        "team-a",
        "kafka",
        {},
        SUMMER_OUT,
        [("milkyway-system/kafka-upgrades", 1, ("bob", "carol"), (), 3600.0, "reject")],
        [],
    ),
    (
        "restart",
        "team-a",
        "flink",
        {},
        WEEKDAY,
        [("team-a/restarts", 1, ("dave",), ("approvers-a",), 1800.0, "approve")],
        [],
    ),
    (
        "replace-member",
        "team-a",
        "zookeeper",
        {},
        SATURDAY_IN,
        [("team-a/restarts", 1, ("dave",), ("approvers-a",), 1800.0, "approve")],
        [],
    ),
    ("restart", "team-b", "flink", {}, WEEKDAY, [], []),
    ("remediate", "team-a", "flink", PROD, WEEKDAY, [], []),
    (
        "config-update",
        "team-a",
        "kafka",
        {"tier": "gold"},
        WEEKDAY,
        [("team-a/gold-config", 1, ("erin",), (), 86400.0, "reject")],
        [],
    ),
    ("config-update", "team-a", "kafka", {"tier": "silver"}, WEEKDAY, [], []),
    ("config-update", "team-b", "kafka", {"tier": "gold"}, WEEKDAY, [], []),
    (
        "provision",
        "team-b",
        "zookeeper",
        {"env": "prod"},
        WEEKDAY,
        [("team-b/not-sandbox", 3, ("frank", "gina", "hal"), (), 86400.0, "reject")],
        [],
    ),
    ("provision", "team-b", "zookeeper", {"env": "sandbox"}, WEEKDAY, [], []),
    ("restart", "team-b", "zookeeper", {"env": "prod", "frozen": "yes"}, WEEKDAY, [], []),
    (
        "decommission",
        "team-b",
        "zookeeper",
        PROD,
        WEEKDAY,
        [
            ("milkyway-system/prod-disruptive", 2, (), ("sre",), 14400.0, "reject"),
            ("team-b/not-sandbox", 3, ("frank", "gina", "hal"), (), 86400.0, "reject"),
        ],
        [],
    ),
    (
        "scale-in",
        "team-a",
        "kafka",
        {"env": "prod", "tier": "gold"},
        SATURDAY_IN,
        [("milkyway-system/prod-disruptive", 2, (), ("sre",), 14400.0, "reject")],
        [],
    ),
]


@pytest.mark.parametrize(
    ("operation", "namespace", "ctype", "labels", "now", "gates", "auto"),
    CASES,
    ids=[f"{i:02d}-{c[0]}-{c[1]}-{c[2]}" for i, c in enumerate(CASES)],
)
def test_policy_table(
    operation: str,
    namespace: str,
    ctype: str,
    labels: dict[str, str],
    now: datetime,
    gates: list[tuple[Any, ...]],
    auto: list[str],
) -> None:
    requirement = required_approvals(
        POLICIES,
        operation=operation,
        flow=FLOW[operation],
        namespace=namespace,
        component_type=ctype,
        labels=labels,
        now=now,
    )
    got = [
        (g.policy, g.required, g.users, g.groups, g.timeout, g.default) for g in requirement.gates
    ]
    assert got == gates
    assert list(requirement.auto_approved) == auto


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 20
    assert sum(1 for c in CASES if c[5]) >= 10


def test_a_policy_elsewhere_never_applies() -> None:
    team_a_only = [p for p in POLICIES if p.metadata.namespace == "team-a"]
    requirement = required_approvals(
        team_a_only,
        operation="restart",
        flow="milkyway-restart",
        namespace="team-b",
        component_type="kafka",
        labels={},
        now=WEEKDAY,
    )
    assert requirement.gates == ()


@pytest.mark.parametrize(
    ("approvals", "field", "fix"),
    [
        ({}, "approvals", "name who may approve"),
        ({"users": ["a"], "required": 2}, "approvals", "name more users"),
        ({"users": ["a"], "timeout": "soon"}, "timeout", "like 4h"),
        ({"users": ["a"], "required": 0}, "required", "greater than or equal to 1"),
        ({"users": ["a"], "default": "maybe"}, "default", "'approve' or 'reject'"),
    ],
)
def test_invalid_approvals_are_refused(approvals: dict[str, Any], field: str, fix: str) -> None:
    with pytest.raises(ValidationError) as info:
        policy("team-a", "bad", {"approvals": approvals})
    text = str(info.value)
    assert field in text and fix in text


@pytest.mark.parametrize(
    ("window", "fix"),
    [
        ({"schedule": "every saturday", "duration": "4h"}, "is not a cron expression"),
        ({"schedule": "0 2 * * 6", "duration": "0s"}, "longer than zero"),
        ({"schedule": "0 2 * * 6", "duration": "4h", "timeZone": "Mars/Olympus"}, "IANA"),
    ],
)
def test_invalid_windows_are_refused(window: dict[str, Any], fix: str) -> None:
    with pytest.raises(ValidationError, match=fix):
        policy("team-a", "bad", {"approvals": {"users": ["a"]}, "autoApproveIn": window})


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("45s") == 45.0
    with pytest.raises(ValueError, match="not like"):
        parse_duration("")


WINDOWED = [
    policy(
        "milkyway-system",
        "weekend-window",
        {
            "match": {"operations": ["upgrade", "restart"]},
            "allowedIn": {"schedule": "0 22 * * 5", "duration": "56h", "timeZone": "UTC"},
        },
    ),
    policy(
        "team-a",
        "year-end-freeze",
        {
            "match": {"selector": {"matchLabels": {"env": "prod"}}},
            "freezes": [
                {
                    "start": "2026-12-19T00:00:00Z",
                    "end": "2026-12-28T08:00:00Z",
                    "reason": "year-end freeze",
                }
            ],
        },
    ),
]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("operation", "labels", "now", "until", "why"),
    [
        ("rolling-upgrade", {}, "2026-12-07T10:00:00Z", "2026-12-11T22:00:00Z", "window"),
        ("rolling-upgrade", {}, "2026-12-12T10:00:00Z", None, ""),
        ("rolling-upgrade", {}, "2026-12-14T05:59:59Z", None, ""),
        ("rolling-upgrade", {}, "2026-12-14T06:00:00Z", "2026-12-18T22:00:00Z", "window"),
        ("scale-out", {}, "2026-12-07T10:00:00Z", None, ""),
        ("scale-out", {"env": "prod"}, "2026-12-20T10:00:00Z", "2026-12-28T08:00:00Z", "freeze"),
        ("scale-out", {"env": "prod"}, "2026-12-28T08:00:00Z", None, ""),
        # The freeze ends on Monday 28 Dec after that weekend's window; the next opens 1 Jan.
        ("restart", {"env": "prod"}, "2026-12-19T10:00:00Z", "2027-01-01T22:00:00Z", "freeze"),
        ("restart", {"env": "dev"}, "2026-12-19T10:00:00Z", None, ""),
    ],
)
def test_windows_and_freezes_hold_a_start(
    operation: str, labels: dict[str, str], now: str, until: str | None, why: str
) -> None:
    hold = start_hold(
        WINDOWED,
        operation=operation,
        flow=FLOW[operation],
        namespace="team-a",
        component_type="kafka",
        labels=labels,
        now=_at(now),
    )
    if until is None:
        assert hold is None
    else:
        assert hold is not None and hold.until == _at(until)
        assert any(why in r for r in hold.reasons)


def test_a_policy_must_ask_for_something() -> None:
    with pytest.raises(ValidationError, match="asks for nothing"):
        policy("team-a", "empty", {"match": {}})
    with pytest.raises(ValidationError, match="before it starts"):
        policy(
            "team-a",
            "bad-freeze",
            {"freezes": [{"start": "2026-12-28T00:00:00Z", "end": "2026-12-20T00:00:00Z"}]},
        )


def test_the_policies_in_the_docs_are_valid() -> None:
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[3] / "docs" / "approvals.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    policies = [yaml.safe_load(b) for b in blocks]
    policies = [p for p in policies if p.get("kind") == "ApprovalPolicy"]
    assert len(policies) >= 2
    for doc in policies:
        ApprovalPolicy.model_validate(doc)

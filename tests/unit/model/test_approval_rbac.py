"""The shipped ClusterRoles keep approvals out of users' hands: no role a user is bound to
may write a FlowRun's status, approvers decide only through the server (the ``approve``
verb, checked by it), and only the server may read the decision key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

RBAC = Path(__file__).resolve().parents[3] / "deploy" / "rbac"
USER_ROLES = (
    "milkyway-viewer",
    "milkyway-editor",
    "milkyway-admin",
    "milkyway-approver",
    "milkyway-auditor",
    "milkyway-catalog-reader",
)


def _docs() -> list[dict[str, Any]]:
    return [d for p in sorted(RBAC.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def _rules(name: str) -> list[dict[str, Any]]:
    roles = [d for d in _docs() if d["kind"] == "ClusterRole" and d["metadata"]["name"] == name]
    assert len(roles) == 1, name
    return roles[0]["rules"]


def _grants(name: str, resource: str, verb: str) -> bool:
    return any(
        (resource in r.get("resources", []) or "*" in r.get("resources", []))
        and (verb in r.get("verbs", []) or "*" in r.get("verbs", []))
        for r in _rules(name)
    )


def test_no_user_role_writes_flowrun_status() -> None:
    for role in USER_ROLES:
        for verb in ("update", "patch", "create"):
            assert not _grants(role, "flowruns/status", verb), (role, verb)
            assert not _grants(role, "flowruns/*", verb), (role, verb)


def test_approvers_decide_only_through_the_server() -> None:
    assert _grants("milkyway-approver", "flowruns", "approve")
    assert not _grants("milkyway-approver", "flowruns", "update")
    assert not _grants("milkyway-approver", "flowruns", "patch")
    assert not _grants("milkyway-viewer", "flowruns", "approve")
    assert not _grants("milkyway-editor", "flowruns", "approve")


def test_only_the_server_reads_the_decision_key() -> None:
    for doc in _docs():
        for rule in doc.get("rules") or []:
            if "secrets" not in rule.get("resources", []):
                continue
            assert doc["kind"] == "Role" and doc["metadata"]["name"].startswith("milkyway-server")
            if "get" in rule.get("verbs", []):
                assert rule.get("resourceNames"), "reading secrets is limited by name"

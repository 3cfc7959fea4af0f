"""What deciding a flow's approvals costs the operator: ``required_approvals`` plus
``start_hold`` for one flow against 0 (the baseline), 10, 100 and 1000 ApprovalPolicies
(a mix of cluster-wide and namespaced, with selectors, windows and freezes), and the
HMAC of one signed decision (sign + verify).

Run: .venv/bin/python bench/approval_policies.py
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from typing import Any

from milkyway.model.approval_policy import ApprovalPolicy, required_approvals, start_hold
from milkyway.security.decision_proof import decision_holds, sign_decision


def _policy(i: int) -> ApprovalPolicy:
    spec: dict[str, Any] = {
        "match": {
            "operations": ["upgrade", "restart"] if i % 2 else ["scale-in", "decommission"],
            "selector": {"matchLabels": {"env": "prod"}} if i % 3 else {},
            "componentTypes": ["kafka"] if i % 5 == 0 else [],
        },
        "approvals": {"users": ["bob", "carol"], "groups": ["sre"], "required": 1 + i % 2},
    }
    if i % 4 == 0:
        spec["allowedIn"] = {"schedule": "0 22 * * 5", "duration": "56h", "timeZone": "UTC"}
    if i % 7 == 0:
        spec["autoApproveIn"] = {"schedule": "0 2 * * 6", "duration": "4h"}
    return ApprovalPolicy.model_validate(
        {
            "apiVersion": "milkyway.ebay.com/v1",
            "kind": "ApprovalPolicy",
            "metadata": {
                "name": f"p{i}",
                "namespace": "milkyway-system" if i % 2 else f"team-{i % 10}",
            },
            "spec": spec,
        }
    )


def _time(call: Any, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def main() -> None:
    now = datetime(2026, 12, 9, 10, tzinfo=UTC)
    facts: dict[str, Any] = {
        "operation": "rolling-upgrade",
        "flow": "milkyway-rolling-upgrade",
        "namespace": "team-3",
        "component_type": "kafka",
        "labels": {"env": "prod"},
        "now": now,
    }
    print("policies  decide p50 µs  p99 µs   (required_approvals + start_hold, one flow)")
    for count in (0, 10, 100, 1000):
        policies = [_policy(i) for i in range(count)]

        def decide(policies: list[ApprovalPolicy] = policies) -> None:
            required_approvals(policies, **facts)
            start_hold(policies, **facts)

        rounds = 2000 if count <= 100 else 200
        samples = sorted(_time(decide, rounds))
        p50 = statistics.median(samples)
        p99 = samples[int(len(samples) * 0.99) - 1]
        print(f"{count:>8}  {p50:>12.1f}  {p99:>7.1f}")
    key = b"k" * 32
    fields: dict[str, Any] = {
        "namespace": "team-a",
        "run": "change-1",
        "uid": "0c8f3f0e-1",
        "request_id": "abc",
        "op": "approve",
        "actor": "bob",
        "groups": ["sre"],
        "step": "approval-p",
        "reason": "ok",
    }

    def sign_and_verify() -> None:
        proof = sign_decision(key, **fields)
        assert decision_holds(key, proof, **fields)

    samples = sorted(_time(sign_and_verify, 20000))
    print(f"decision sign+verify p50 {statistics.median(samples):.1f} µs")


if __name__ == "__main__":
    main()

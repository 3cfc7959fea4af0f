"""PodDisruptionBudget status and the eviction check, pure core.

A pod counts as healthy when it is Ready and not terminating. ``minAvailable`` and
``maxUnavailable`` (integers or percentages) are resolved against the number of pods
the budget selects, as kube-controller-manager does for pods without a scalable owner.
An eviction is refused with 429 when the budget has no disruption left, and with 500
when several budgets select the pod (the API server cannot decide which one rules).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from milkyway.sim.apiserver.errors import ApiError, Cause, internal_error, too_many_requests
from milkyway.sim.apiserver.selectors import label_selector_matches
from milkyway.sim.controllers.actions import PDBS, Action, Patch
from milkyway.sim.controllers.objects import (
    Obj,
    is_pod_ready,
    is_terminating,
    labels_of,
    meta,
    name_of,
    namespace_of,
    scaled_int_or_percent,
)


def selects(pdb: Obj, pod: Obj) -> bool:
    return namespace_of(pdb) == namespace_of(pod) and label_selector_matches(
        (pdb.get("spec") or {}).get("selector"), labels_of(pod)
    )


def healthy(pod: Obj) -> bool:
    return is_pod_ready(pod) and not is_terminating(pod)


@dataclass(frozen=True)
class Budget:
    expected: int
    current_healthy: int
    desired_healthy: int

    @property
    def disruptions_allowed(self) -> int:
        return max(0, self.current_healthy - self.desired_healthy)


def budget(pdb: Obj, pods: Sequence[Obj]) -> Budget:
    spec = pdb.get("spec") or {}
    live = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    expected = len(live)
    current = sum(1 for p in live if healthy(p))
    if spec.get("maxUnavailable") is not None:
        unavailable = scaled_int_or_percent(spec["maxUnavailable"], expected, round_up=True)
        desired = max(0, expected - unavailable)
    elif spec.get("minAvailable") is not None:
        desired = scaled_int_or_percent(spec["minAvailable"], expected, round_up=True)
    else:
        desired = expected
    return Budget(expected, current, desired)


def status_patch(pdb: Obj, pods: Sequence[Obj], now: str) -> list[Action]:
    b = budget(pdb, pods)
    old = pdb.get("status") or {}
    allowed = b.disruptions_allowed
    previous = next(
        (c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), {}
    )
    cond_status = "True" if allowed > 0 else "False"
    condition = {
        "type": "DisruptionAllowed",
        "status": cond_status,
        "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
        "message": "",
        "observedGeneration": meta(pdb).get("generation", 1),
        "lastTransitionTime": previous.get("lastTransitionTime")
        if previous.get("status") == cond_status
        else now,
    }
    status: dict[str, Any] = {
        "observedGeneration": meta(pdb).get("generation", 1),
        "expectedPods": b.expected,
        "currentHealthy": b.current_healthy,
        "desiredHealthy": b.desired_healthy,
        "disruptionsAllowed": allowed,
        "conditions": [condition],
    }
    if any(old.get(k) != v for k, v in status.items()):
        return [Patch(PDBS, namespace_of(pdb), name_of(pdb), {"status": status}, "status")]
    return []


def check_eviction(
    pod: Obj, pdbs: Iterable[Obj], pods_of: Callable[[Obj], Sequence[Obj]]
) -> Obj | None:
    """The budget to charge for evicting ``pod``, or None when no budget covers it.

    Raises the ``ApiError`` the eviction subresource answers with when the eviction must
    be refused. ``pods_of(pdb)`` returns the pods a budget selects.
    """
    covering = [b for b in pdbs if selects(b, pod)]
    if not covering:
        return None
    if len(covering) > 1:
        raise internal_error(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource "
            "does not support."
        )
    pdb = covering[0]
    if not healthy(pod) and (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == (
        "AlwaysAllow"
    ):
        return None
    b = budget(pdb, pods_of(pdb))
    if not healthy(pod) and b.current_healthy >= b.desired_healthy:
        return None
    if b.disruptions_allowed <= 0:
        raise _refused(pdb, b)
    return pdb


def _refused(pdb: Obj, b: Budget) -> ApiError:
    error = too_many_requests(
        "Cannot evict pod as it would violate the pod's disruption budget.", retry_after_seconds=0
    )
    error.causes.append(
        _cause(
            f"The disruption budget {name_of(pdb)} needs {b.desired_healthy} healthy pods and "
            f"has {b.current_healthy} currently"
        )
    )
    return error


def _cause(message: str) -> Cause:
    return Cause(reason="DisruptionBudget", message=message)

"""Small readers over Kubernetes objects as plain dicts, shared by every controller core."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


def meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def name_of(obj: Mapping[str, Any]) -> str:
    return meta(obj).get("name", "")


def namespace_of(obj: Mapping[str, Any]) -> str:
    return meta(obj).get("namespace", "") or ""


def key_of(obj: Mapping[str, Any]) -> tuple[str, str]:
    return (namespace_of(obj), name_of(obj))


def uid_of(obj: Mapping[str, Any]) -> str:
    return meta(obj).get("uid", "")


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return meta(obj).get("labels") or {}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def is_terminating(obj: Mapping[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def controller_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def controller_ref(owner: Mapping[str, Any], *, block: bool = True) -> dict[str, Any]:
    """An ``ownerReference`` naming ``owner`` as the managing controller (GC follows it)."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": True,
        "blockOwnerDeletion": block,
    }


def object_ref(obj: Mapping[str, Any]) -> dict[str, Any]:
    ref = {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "name": name_of(obj),
        "uid": uid_of(obj),
        "resourceVersion": meta(obj).get("resourceVersion", ""),
    }
    if namespace_of(obj):
        ref["namespace"] = namespace_of(obj)
    return ref


def now_rfc3339(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    """A stable short hash of a pod template, as used in revision names and pod labels."""
    digest = hashlib.sha256(
        json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
        + str(collision_count).encode()
    ).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    value = int(digest[:16], 16)
    out = []
    for _ in range(10):
        value, rem = divmod(value, len(alphabet))
        out.append(alphabet[rem])
    return "".join(out)


# --- pods -------------------------------------------------------------------------------------


def pod_condition(pod: Mapping[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    cond = pod_condition(pod, "Ready")
    return bool(cond) and cond.get("status") == "True"


def pod_phase(pod: Mapping[str, Any]) -> str:
    return (pod.get("status") or {}).get("phase", "Pending")


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    """Counts towards a controller's replicas: not terminating, not finished."""
    return not is_terminating(pod) and pod_phase(pod) not in ("Succeeded", "Failed")


def is_pod_available(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime) -> bool:
    if not is_pod_ready(pod) or is_terminating(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = (pod_condition(pod, "Ready") or {}).get("lastTransitionTime")
    return bool(since) and (now - parse_time(since)).total_seconds() >= min_ready_seconds


# --- label selectors --------------------------------------------------------------------------


def replicas_of(obj: Obj) -> int:
    """``spec.replicas`` of a workload, defaulting to 1 as the API server does."""
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def map_selector_matches(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """A Service's plain ``selector`` map; empty or missing selects nothing."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


# --- quantities -------------------------------------------------------------------------------

_SUFFIXES = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value: str | int | float) -> float:
    """A Kubernetes resource quantity ("100m", "1Gi", "2", "1e3") as a float."""
    if isinstance(value, int | float):
        return float(value)
    match = _QUANTITY.match(value.strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise ValueError(
            f"quantity {value!r} is not a Kubernetes quantity; use e.g. '500m', '2', '1Gi'"
        )
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


def pod_requests(pod: Mapping[str, Any]) -> dict[str, float]:
    """Effective requests: the sum over containers, or the largest init container if bigger."""
    spec = pod.get("spec") or {}
    total: dict[str, float] = {}
    for container in spec.get("containers") or []:
        for res, qty in ((container.get("resources") or {}).get("requests") or {}).items():
            total[res] = total.get(res, 0.0) + parse_quantity(qty)
    for container in spec.get("initContainers") or []:
        for res, qty in ((container.get("resources") or {}).get("requests") or {}).items():
            total[res] = max(total.get(res, 0.0), parse_quantity(qty))
    return total


def scaled_int_or_percent(value: int | str | None, total: int, *, round_up: bool) -> int:
    """``IntOrString`` fields such as maxSurge: "25%" of ``total``, rounded as Kubernetes does."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        return int(text)
    pct = int(text[:-1])
    scaled = pct * total
    return -(-scaled // 100) if round_up else scaled // 100

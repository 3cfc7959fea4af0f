"""The scheduler's pure core: pick a node for a pending pod, or say why none fits.

Filters follow kube-scheduler's default plugins (NodeUnschedulable, NodeName,
NodeAffinity incl. nodeSelector, TaintToleration, NodeResourcesFit, InterPodAffinity's
required anti-affinity, VolumeBinding/VolumeRestrictions for node-pinned volumes), and a
rejection message has the exact shape kube-scheduler writes into the ``FailedScheduling``
event and the ``PodScheduled=False`` condition, because people and tools grep for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from milkyway.sim.apiserver.selectors import label_selector_matches
from milkyway.sim.controllers.objects import (
    Obj,
    controller_of,
    is_terminating,
    labels_of,
    name_of,
    namespace_of,
    parse_quantity,
    pod_requests,
)


@dataclass
class NodeState:
    """A node plus what is already placed on it, kept incrementally by the runtime."""

    node: Obj
    requested: dict[str, float] = field(default_factory=dict)
    pods: dict[tuple[str, str], Obj] = field(default_factory=dict)
    anti: dict[tuple[str, str], Obj] = field(default_factory=dict)
    """The subset of ``pods`` carrying required anti-affinity (checked symmetrically)."""
    owners: Counter[str] = field(default_factory=Counter)
    """Pods per controller uid, so spreading costs O(1) per node."""
    _allocatable: tuple[int, dict[str, float]] | None = field(default=None, repr=False)

    @property
    def allocatable(self) -> dict[str, float]:
        """The node's allocatable resources, parsed once per Node object."""
        cached = self._allocatable
        if cached is None or cached[0] != id(self.node):
            cached = (id(self.node), _allocatable(self.node))
            self._allocatable = cached
        return cached[1]

    def add(self, pod: Obj) -> None:
        key = (namespace_of(pod), name_of(pod))
        if key in self.pods:
            self.remove(self.pods[key])
        self.pods[key] = pod
        owner = controller_of(pod)
        if owner and owner.get("uid"):
            self.owners[owner["uid"]] += 1
        if _anti_affinity_terms(pod):
            self.anti[key] = pod
        for res, qty in pod_requests(pod).items():
            self.requested[res] = self.requested.get(res, 0.0) + qty

    def remove(self, pod: Obj) -> None:
        key = (namespace_of(pod), name_of(pod))
        old = self.pods.pop(key, None)
        self.anti.pop(key, None)
        if old is None:
            return
        owner = controller_of(old)
        if owner and owner.get("uid"):
            self.owners[owner["uid"]] -= 1
            if self.owners[owner["uid"]] <= 0:
                del self.owners[owner["uid"]]
        for res, qty in pod_requests(old).items():
            self.requested[res] = self.requested.get(res, 0.0) - qty


@dataclass(frozen=True)
class VolumeView:
    """The claims, volumes and classes the volume filters read."""

    claims: Mapping[tuple[str, str], Obj]
    volumes: Mapping[str, Obj]


@dataclass(frozen=True)
class Bind:
    node: str


@dataclass(frozen=True)
class Unschedulable:
    message: str


Decision = Bind | Unschedulable


def schedule(pod: Obj, nodes: Sequence[NodeState], volumes: VolumeView) -> Decision:
    """Bind ``pod`` to the best feasible node, or explain (like kube-scheduler) why not."""
    pinned, claim_error = _volume_node_terms(pod, volumes)
    if claim_error:
        return Unschedulable(f"0/{len(nodes)} nodes are available: {claim_error}.")
    reasons: Counter[str] = Counter()
    feasible: list[NodeState] = []
    for state in nodes:
        reason = _filter(pod, state, nodes, pinned)
        if reason:
            reasons[reason] += 1
        else:
            feasible.append(state)
    if not feasible:
        detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        return Unschedulable(f"0/{len(nodes)} nodes are available: {detail}.")
    best = min(feasible, key=lambda s: (_score(pod, s), name_of(s.node)))
    return Bind(name_of(best.node))


def _filter(
    pod: Obj, state: NodeState, nodes: Sequence[NodeState], pinned: list[list[dict[str, Any]]]
) -> str:
    node = state.node
    spec = pod.get("spec") or {}
    if (node.get("spec") or {}).get("unschedulable") and not _tolerates(
        spec, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
    ):
        return "node(s) were unschedulable"
    if not _matches_node_selector_and_affinity(spec, node):
        return "node(s) didn't match Pod's node affinity/selector"
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(spec, taint):
            return (
                f"node(s) had untolerated taint {{{taint.get('key', '')}: "
                f"{taint.get('value', '')}}}"
            )
    for terms in pinned:
        if not _node_selector_terms_match(terms, node):
            return "node(s) had volume node affinity conflict"
    lacking = _insufficient(pod, state)
    if lacking:
        return lacking
    if _violates_anti_affinity(pod, state, nodes):
        return "node(s) didn't match pod anti-affinity rules"
    return ""


def _score(pod: Obj, state: NodeState) -> tuple[int, float]:
    """Spread a controller's pods first, then prefer the least requested node."""
    owner = controller_of(pod)
    siblings = state.owners.get(owner.get("uid", ""), 0) if owner else 0
    alloc = state.allocatable
    load = 0.0
    for res in ("cpu", "memory"):
        if alloc.get(res):
            load += state.requested.get(res, 0.0) / alloc[res]
    return siblings, load + len(state.pods) / max(alloc.get("pods", 110.0), 1.0)


def _allocatable(node: Obj) -> dict[str, float]:
    status = node.get("status") or {}
    raw = status.get("allocatable") or status.get("capacity") or {}
    return {k: parse_quantity(v) for k, v in raw.items()}


def _insufficient(pod: Obj, state: NodeState) -> str:
    alloc = state.allocatable
    if len(state.pods) + 1 > alloc.get("pods", 110.0):
        return "Too many pods"
    for res, qty in sorted(pod_requests(pod).items()):
        if qty <= 0:
            continue
        if res not in alloc or state.requested.get(res, 0.0) + qty > alloc[res]:
            return f"Insufficient {res}"
    return ""


# --- tolerations and node affinity --------------------------------------------------------


def _tolerates(spec: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    for tol in spec.get("tolerations") or []:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        op = tol.get("operator", "Equal")
        if op == "Exists":
            if not tol.get("key") or tol.get("key") == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and (tol.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False


def _matches_node_selector_and_affinity(spec: Mapping[str, Any], node: Obj) -> bool:
    node_labels = labels_of(node)
    for key, value in (spec.get("nodeSelector") or {}).items():
        if node_labels.get(key) != value:
            return False
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms")
    return required is None or _node_selector_terms_match(required, node)


def _node_selector_terms_match(terms: Sequence[Mapping[str, Any]], node: Obj) -> bool:
    """Terms are ORed; a term's requirements are ANDed; an empty term matches nothing."""
    labels = labels_of(node)
    fields = {"metadata.name": name_of(node)}
    for term in terms:
        exprs = term.get("matchExpressions") or []
        field_exprs = term.get("matchFields") or []
        if not exprs and not field_exprs:
            continue
        if all(_requirement(e, labels) for e in exprs) and all(
            _requirement(e, fields) for e in field_exprs
        ):
            return True
    return False


def _requirement(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        try:
            have, want = int(labels[key]), int(values[0])
        except (KeyError, IndexError, ValueError):
            return False
        return have > want if op == "Gt" else have < want
    return False


# --- inter-pod anti-affinity ------------------------------------------------------------------


def _anti_affinity_terms(pod: Obj) -> list[Mapping[str, Any]]:
    anti = ((pod.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {}
    return anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []


def _term_selects(term: Mapping[str, Any], owner_ns: str, other: Obj) -> bool:
    namespaces = term.get("namespaces") or [owner_ns]
    if term.get("namespaceSelector") is None and namespace_of(other) not in namespaces:
        return False
    return label_selector_matches(term.get("labelSelector"), labels_of(other))


def _violates_anti_affinity(pod: Obj, state: NodeState, nodes: Sequence[NodeState]) -> bool:
    own_terms = _anti_affinity_terms(pod)
    ns = namespace_of(pod)
    node_labels = labels_of(state.node)
    for other_state in nodes:
        other_labels = labels_of(other_state.node)
        for term in own_terms:
            key = term.get("topologyKey", "")
            if (
                key in node_labels
                and other_labels.get(key) == node_labels[key]
                and any(_term_selects(term, ns, o) for o in other_state.pods.values())
            ):
                return True
        for other in other_state.anti.values():
            for term in _anti_affinity_terms(other):
                key = term.get("topologyKey", "")
                if (
                    key in node_labels
                    and other_labels.get(key) == node_labels[key]
                    and _term_selects(term, namespace_of(other), pod)
                ):
                    return True
    return False


# --- volumes ----------------------------------------------------------------------------------


def _volume_node_terms(pod: Obj, volumes: VolumeView) -> tuple[list[list[dict[str, Any]]], str]:
    """The node-affinity terms of bound volumes, or the claim problem that blocks the pod."""
    pinned: list[list[dict[str, Any]]] = []
    ns = namespace_of(pod)
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        claim_ref = volume.get("persistentVolumeClaim")
        if not claim_ref:
            continue
        claim_name = claim_ref.get("claimName", "")
        claim = volumes.claims.get((ns, claim_name))
        if claim is None:
            return [], f'persistentvolumeclaim "{claim_name}" not found'
        if is_terminating(claim):
            return [], f'persistentvolumeclaim "{claim_name}" is being deleted'
        pv_name = (claim.get("spec") or {}).get("volumeName")
        if not pv_name:
            continue
        pv = volumes.volumes.get(pv_name)
        if pv is None:
            return [], f'persistentvolume "{pv_name}" not found'
        required = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get(
            "nodeSelectorTerms"
        )
        if required:
            pinned.append(required)
    return pinned, ""

"""Shells of the workload controllers: StatefulSet, Deployment, ReplicaSet,
ReplicationController and DaemonSet.

Each shell maps watch events to the keys of the owning object (via the informers' owner
index), and on reconcile hands its pure core exactly the objects that owner controls.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime

from milkyway.sim.controllers import daemonset, deployment, replicaset, statefulset
from milkyway.sim.controllers.actions import Action, Requeue
from milkyway.sim.controllers.objects import (
    Obj,
    controller_of,
    is_pod_ready,
    key_of,
    name_of,
    namespace_of,
    parse_time,
    pod_condition,
    uid_of,
)
from milkyway.sim.controllers.runtime import ControlPlane


def _owner_key(obj: Obj | None, kind: str, plane: ControlPlane, resource: str) -> Hashable | None:
    """The key of ``obj``'s controlling ``kind``, if that owner is in the cache."""
    if obj is None:
        return None
    ref = controller_of(obj)
    if not ref or ref.get("kind") != kind:
        return None
    owner = plane.get(resource, namespace_of(obj), ref.get("name", ""))
    if owner is None or uid_of(owner) != ref.get("uid"):
        return None
    return key_of(owner)


def _min_ready_requeue(obj: Obj, pods: Iterable[Obj], now: datetime) -> list[Action]:
    """Availability after ``minReadySeconds`` is time-driven: look again when the next
    Ready pod becomes available."""
    seconds = int((obj.get("spec") or {}).get("minReadySeconds") or 0)
    if seconds <= 0:
        return []
    waits = []
    for pod in pods:
        since = (pod_condition(pod, "Ready") or {}).get("lastTransitionTime")
        if is_pod_ready(pod) and since:
            left = seconds - (now - parse_time(since)).total_seconds()
            if left > 0:
                waits.append(left)
    return [Requeue(min(waits) + 0.01)] if waits else []


class _WorkloadController:
    """Woken by its own objects and by the objects they control (pods, sets, revisions)."""

    name: str
    kind: str
    _resource: str

    def setup(self, plane: ControlPlane) -> None:
        self.plane = plane
        plane.informer(self._resource).on_change(
            lambda _t, old, new: plane.enqueue(self.name, key_of(new or old))  # type: ignore[arg-type]
        )

    def _on_owned(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        self._wake_owner(new or old)

    def _wake_owner(self, obj: Obj | None) -> None:
        key = _owner_key(obj, self.kind, self.plane, self._resource)
        if key is not None:
            self.plane.enqueue(self.name, key)


class StatefulSetController(_WorkloadController):
    name = "statefulset"
    kind = "StatefulSet"
    _resource = "apps/v1/statefulsets"

    def setup(self, plane: ControlPlane) -> None:
        super().setup(plane)
        plane.pods.on_change(self._on_owned)
        plane.informer("apps/v1/controllerrevisions").on_change(self._on_owned)
        plane.informer("v1/persistentvolumeclaims").on_change(self._on_claim)

    def _on_claim(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        claim = new or old
        if claim is None:
            return
        for pod in self.plane.pods.by_index("claim", key_of(claim)):
            self._wake_owner(pod)

    def reconcile(self, key: Hashable) -> list[Action]:
        ns, name = key  # type: ignore[misc]
        sts = self.plane.get(self._resource, ns, name)
        if sts is None:
            return []
        uid = uid_of(sts)
        pods: dict[int, Obj] = {}
        for pod in self.plane.pods.by_index("owner", uid):
            ordinal = statefulset.ordinal_of(name, name_of(pod))
            if ordinal is not None:
                pods[ordinal] = pod
        claims_informer = self.plane.informer("v1/persistentvolumeclaims")
        claims: dict[str, Obj] = {}
        for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            stem = f"{(template.get('metadata') or {}).get('name', '')}-{name}"
            for claim in claims_informer.by_index("stem", (ns, stem)):
                claims[name_of(claim)] = claim
        revisions = {
            name_of(r): r
            for r in self.plane.informer("apps/v1/controllerrevisions").by_index("owner", uid)
        }
        view = statefulset.StatefulSetView(sts, pods, claims, revisions)
        now = self.plane.now()
        actions = statefulset.reconcile_statefulset(view, now)
        return actions + _min_ready_requeue(sts, pods.values(), now)


class ReplicaSetController(_WorkloadController):
    name = "replicaset"
    kind = "ReplicaSet"
    _resource = "apps/v1/replicasets"

    def setup(self, plane: ControlPlane) -> None:
        super().setup(plane)
        plane.pods.on_change(self._on_owned)

    def reconcile(self, key: Hashable) -> list[Action]:
        ns, name = key  # type: ignore[misc]
        rs = self.plane.get(self._resource, ns, name)
        if rs is None:
            return []
        pods = self.plane.pods.by_index("owner", uid_of(rs))
        view = replicaset.ReplicaSetView(rs, pods)
        now = self.plane.now()
        return replicaset.reconcile_replicaset(view, now) + _min_ready_requeue(rs, pods, now)


class DeploymentController(_WorkloadController):
    name = "deployment"
    kind = "Deployment"
    _resource = "apps/v1/deployments"

    def setup(self, plane: ControlPlane) -> None:
        super().setup(plane)
        plane.informer("apps/v1/replicasets").on_change(self._on_owned)
        plane.pods.on_change(self._on_pod)

    def _on_pod(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        if pod is None:
            return
        ref = controller_of(pod)
        if not ref or ref.get("kind") != "ReplicaSet":
            return
        self._wake_owner(
            self.plane.get("apps/v1/replicasets", namespace_of(pod), ref.get("name", ""))
        )

    def reconcile(self, key: Hashable) -> list[Action]:
        ns, name = key  # type: ignore[misc]
        dep = self.plane.get(self._resource, ns, name)
        if dep is None:
            return []
        sets = self.plane.informer("apps/v1/replicasets").by_index("owner", uid_of(dep))
        pods = {uid_of(rs): self.plane.pods.by_index("owner", uid_of(rs)) for rs in sets}
        view = deployment.DeploymentView(dep, sets, pods)
        all_pods = [p for group in pods.values() for p in group]
        now = self.plane.now()
        return deployment.reconcile_deployment(view, now) + _min_ready_requeue(dep, all_pods, now)


class ReplicationControllerController(_WorkloadController):
    """The ReplicaSet controller's twin: a ReplicationController's selector is a plain map."""

    name = "replicationcontroller"
    kind = "ReplicationController"
    _resource = "v1/replicationcontrollers"

    def setup(self, plane: ControlPlane) -> None:
        super().setup(plane)
        plane.pods.on_change(self._on_owned)

    def reconcile(self, key: Hashable) -> list[Action]:
        ns, name = key  # type: ignore[misc]
        rc = self.plane.get(self._resource, ns, name)
        if rc is None:
            return []
        spec = dict(rc.get("spec") or {})
        spec["selector"] = {"matchLabels": dict(spec.get("selector") or {})}
        as_set = {**rc, "spec": spec}
        pods = self.plane.pods.by_index("owner", uid_of(rc))
        view = replicaset.ReplicaSetView(as_set, pods)
        now = self.plane.now()
        return replicaset.reconcile_replicaset(
            view, now, ("", "v1", "replicationcontrollers")
        ) + _min_ready_requeue(rc, pods, now)


class DaemonSetController(_WorkloadController):
    """One pod per qualifying node (see :mod:`daemonset`); woken by nodes too."""

    name = "daemonset"
    kind = "DaemonSet"
    _resource = "apps/v1/daemonsets"

    def setup(self, plane: ControlPlane) -> None:
        super().setup(plane)
        plane.pods.on_change(self._on_owned)
        plane.informer("v1/nodes").on_change(self._on_node)

    def _on_node(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        if old is not None and new is not None:
            same = (old.get("metadata") or {}).get("labels") == (new.get("metadata") or {}).get(
                "labels"
            ) and (old.get("spec") or {}).get("taints") == (new.get("spec") or {}).get("taints")
            if same:
                return
        for ds in list(self.plane.informer(self._resource).objects.values()):
            self.plane.enqueue(self.name, key_of(ds))

    def reconcile(self, key: Hashable) -> list[Action]:
        ns, name = key  # type: ignore[misc]
        ds = self.plane.get(self._resource, ns, name)
        if ds is None:
            return []
        pods = self.plane.pods.by_index("owner", uid_of(ds))
        nodes = list(self.plane.informer("v1/nodes").objects.values())
        view = daemonset.DaemonSetView(ds, nodes, pods)
        now = self.plane.now()
        return daemonset.reconcile_daemonset(view, now) + _min_ready_requeue(ds, pods, now)

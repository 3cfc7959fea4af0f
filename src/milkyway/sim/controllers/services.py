"""Shells of the Endpoints/EndpointSlice and PodDisruptionBudget controllers, plus the
eviction check the API's ``pods/eviction`` subresource calls."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from milkyway.sim.controllers import disruption, endpoints
from milkyway.sim.controllers.actions import PDBS, Action, Patch
from milkyway.sim.controllers.objects import (
    Obj,
    key_of,
    name_of,
    namespace_of,
    now_rfc3339,
)
from milkyway.sim.controllers.runtime import ControlPlane

if TYPE_CHECKING:
    from milkyway.sim.apiserver.api import ClusterAPI

_SERVICES = "v1/services"
_PDBS = "policy/v1/poddisruptionbudgets"


class EndpointsController:
    name = "endpoints"

    def setup(self, plane: ControlPlane) -> None:
        self.plane = plane
        plane.informer(_SERVICES).on_change(self._on_service)
        plane.informer("v1/endpoints").on_change(self._on_owned)
        plane.informer("discovery.k8s.io/v1/endpointslices").on_change(self._on_owned)
        plane.pods.on_change(self._on_pod)

    def _on_service(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        self.plane.enqueue(self.name, key_of((new or old) or {}))

    def _on_owned(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        assert obj is not None
        service = ((obj.get("metadata") or {}).get("labels") or {}).get(
            endpoints.SERVICE_NAME_LABEL, name_of(obj)
        )
        if obj.get("kind") == "EndpointSlice" and not service:
            return
        self.plane.enqueue(self.name, (namespace_of(obj), service))

    def _on_pod(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        seen: set[str] = set()
        for pod in (old, new):
            if pod is None:
                continue
            for service in self.plane.informer(_SERVICES).by_index("ns", namespace_of(pod)):
                if name_of(service) not in seen and endpoints.selects(service, pod):
                    seen.add(name_of(service))
                    self.plane.enqueue(self.name, key_of(service))

    def reconcile(self, key: Hashable) -> list[Action]:
        ns, name = key  # type: ignore[misc]
        service = self.plane.get(_SERVICES, ns, name)
        current = self.plane.get("v1/endpoints", ns, name)
        if service is None:
            return endpoints.orphaned(current, None) if current is not None else []
        pods = [p for p in self.plane.pods.by_index("ns", ns) if endpoints.selects(service, p)]
        slices = "discovery.k8s.io/v1/endpointslices"
        slice_ = self.plane.get(slices, ns, f"{name}-sim")
        return endpoints.reconcile_service(
            service, pods, current, slice_, with_slice=self.plane.served(slices)
        )


class DisruptionController:
    name = "disruption"

    def setup(self, plane: ControlPlane) -> None:
        self.plane = plane
        plane.informer(_PDBS).on_change(
            lambda _t, old, new: plane.enqueue(self.name, key_of((new or old) or {}))
        )
        plane.pods.on_change(self._on_pod)
        plane.api.eviction_check = self.check_eviction

    def stop(self) -> None:
        if self.plane.api.eviction_check == self.check_eviction:
            self.plane.api.eviction_check = None

    def _on_pod(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        for pod in (old, new):
            if pod is None:
                continue
            for pdb in self.plane.informer(_PDBS).by_index("ns", namespace_of(pod)):
                if disruption.selects(pdb, pod):
                    self.plane.enqueue(self.name, key_of(pdb))

    def _selected(self, pdb: Obj) -> list[Obj]:
        return [
            p
            for p in self.plane.pods.by_index("ns", namespace_of(pdb))
            if disruption.selects(pdb, p)
        ]

    def reconcile(self, key: Hashable) -> list[Action]:
        ns, name = key  # type: ignore[misc]
        pdb = self.plane.get(_PDBS, ns, name)
        if pdb is None:
            return []
        return disruption.status_patch(pdb, self._selected(pdb), now_rfc3339(self.plane.now()))

    def check_eviction(self, api: ClusterAPI, pod: Obj, eviction: Obj) -> None:
        """Refuse (429) an eviction the covering budget cannot afford; charge it otherwise.

        The budget's ``disruptionsAllowed`` is decremented and the pod recorded in
        ``disruptedPods`` at once, so two evictions racing within one event cannot both
        pass, as the real eviction subresource guarantees with its own status write.
        """
        pdbs = self.plane.informer(_PDBS).by_index("ns", namespace_of(pod))
        pdb = disruption.check_eviction(pod, pdbs, self._selected)
        if pdb is None or bool((eviction.get("deleteOptions") or {}).get("dryRun")):
            return
        status = pdb.get("status") or {}
        disrupted = dict(status.get("disruptedPods") or {})
        disrupted[name_of(pod)] = now_rfc3339(self.plane.now())
        allowed = max(0, int(status.get("disruptionsAllowed") or 0) - 1)
        self.plane.apply(
            self.name,
            key_of(pdb),
            [
                Patch(
                    PDBS,
                    namespace_of(pdb),
                    name_of(pdb),
                    {"status": {"disruptionsAllowed": allowed, "disruptedPods": disrupted}},
                    "status",
                )
            ],
        )

"""The volume shell: binds claims when they appear or when their first consumer is placed."""

from __future__ import annotations

from collections.abc import Hashable

from milkyway.sim.controllers import volumes
from milkyway.sim.controllers.actions import Action
from milkyway.sim.controllers.objects import Obj, key_of, name_of
from milkyway.sim.controllers.runtime import ControlPlane

_CLAIMS = "v1/persistentvolumeclaims"
_VOLUMES = "v1/persistentvolumes"


class VolumeController:
    name = "volumes"

    def setup(self, plane: ControlPlane) -> None:
        self.plane = plane
        plane.informer(_CLAIMS).on_change(self._on_claim)
        plane.informer(_VOLUMES).on_change(self._on_volume)
        plane.informer("storage.k8s.io/v1/storageclasses").on_change(self._on_class)
        plane.pods.on_change(self._on_pod)

    def _on_claim(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        claim = new or old
        assert claim is not None
        self.plane.enqueue(self.name, ("claim", *key_of(claim)))
        for pv in self.plane.informer(_VOLUMES).by_index("claim", key_of(claim)):
            self.plane.enqueue(self.name, ("volume", "", name_of(pv)))

    def _on_volume(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        volume = new or old
        assert volume is not None
        self.plane.enqueue(self.name, ("volume", "", name_of(volume)))
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        if ref.get("name"):
            self.plane.enqueue(self.name, ("claim", ref.get("namespace", ""), ref["name"]))

    def _on_class(self, _type: str, _old: Obj | None, _new: Obj | None) -> None:
        for ns, name in list(self.plane.informer(_CLAIMS).objects):
            self.plane.enqueue(self.name, ("claim", ns, name))

    def _on_pod(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        before = (old or {}).get("spec", {}).get("nodeName")
        after = (new or {}).get("spec", {}).get("nodeName")
        if new is None or before == after or not after:
            return
        for vol in (new.get("spec") or {}).get("volumes") or []:
            claim = vol.get("persistentVolumeClaim")
            if claim:
                self.plane.enqueue(self.name, ("claim", key_of(new)[0], claim.get("claimName", "")))

    def reconcile(self, key: Hashable) -> list[Action]:
        kind, ns, name = key  # type: ignore[misc]
        claims = self.plane.informer(_CLAIMS)
        pvs = self.plane.informer(_VOLUMES)
        if kind == "volume":
            pv = pvs.get("", name)
            if pv is None:
                return []
            ref = (pv.get("spec") or {}).get("claimRef") or {}
            claim = claims.get(ref.get("namespace", ""), ref.get("name", "")) if ref else None
            return volumes.reconcile_volume(pv, claim)
        claim = claims.get(ns, name)
        if claim is None:
            return []
        consumer = next(
            (
                p["spec"]["nodeName"]
                for p in self.plane.pods.by_index("claim", (ns, name))
                if (p.get("spec") or {}).get("nodeName")
            ),
            None,
        )
        classes = {
            name: obj
            for (_, name), obj in self.plane.informer(
                "storage.k8s.io/v1/storageclasses"
            ).objects.items()
        }
        candidates = pvs.by_index("claim", (ns, name))
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name:
            bound = pvs.get("", volume_name)
            candidates = [bound] if bound is not None else []
        elif not candidates:
            candidates = [
                pv for pv in pvs.objects.values() if not (pv.get("spec") or {}).get("claimRef")
            ]
        return volumes.reconcile_claim(
            claim, classes=classes, volumes=candidates, consumer_node=consumer
        )

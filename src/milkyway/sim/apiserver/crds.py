"""CustomResourceDefinitions: admitting a CRD, then serving (or withdrawing) its resources."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from milkyway.sim.apiserver import errors
from milkyway.sim.apiserver.errors import Cause
from milkyway.sim.apiserver.resources import ResourceInfo, ResourceRegistry, ScalePaths
from milkyway.sim.apiserver.resources import Subresource as _Sub
from milkyway.sim.apiserver.store import DELETED, Store, deep_copy
from milkyway.sim.apiserver.validation import StructuralSchema, validate_crd

Obj = dict[str, Any]
_CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")


class CustomResources:
    """The CRD half of :class:`ClusterAPI`."""

    store: Store
    registry: ResourceRegistry
    clock: Callable[[], datetime]

    # ----------------------------------------------------------------- CRDs

    def _prepare_crd(self, crd: Obj) -> None:
        causes = validate_crd(crd)
        if causes:
            raise errors.invalid(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                crd["metadata"].get("name", ""),
                causes,
            )
        spec = crd["spec"]
        names = spec["names"]
        existing = self.registry.by_gvk(spec["group"], spec["versions"][0]["name"], names["kind"])
        if existing is not None and not existing.custom:
            raise errors.invalid(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                crd["metadata"]["name"],
                [
                    Cause(
                        "FieldValueInvalid",
                        "the kind is served by a built-in resource",
                        "spec.names.kind",
                    )
                ],
            )
        accepted = dict(names)
        accepted.setdefault("singular", names["kind"].lower())
        accepted.setdefault("listKind", f"{names['kind']}List")
        storage = next((v["name"] for v in spec["versions"] if v.get("storage")), "")
        now = self.now()
        status = crd.setdefault("status", {})
        stored_versions = list(status.get("storedVersions") or [])
        if storage and storage not in stored_versions:
            stored_versions.append(storage)
        status["acceptedNames"] = accepted
        status["storedVersions"] = stored_versions
        previous = {c.get("type"): c for c in status.get("conditions") or []}
        status["conditions"] = [
            {
                "type": kind,
                "status": "True",
                "lastTransitionTime": previous.get(kind, {}).get("lastTransitionTime", now),
                "reason": reason,
                "message": message,
            }
            for kind, reason, message in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ]

    def crd_resources(self, crd: Obj) -> list[ResourceInfo]:
        spec = crd["spec"]
        names = spec["names"]
        storage = next((v["name"] for v in spec["versions"] if v.get("storage")), "")
        infos = []
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            subs = version.get("subresources") or {}
            subresources: list[_Sub] = []
            scale_paths = None
            if "status" in subs:
                subresources.append(_Sub("status", names["kind"], spec["group"], version["name"]))
            if "scale" in subs:
                scale = subs["scale"] or {}
                subresources.append(_Sub("scale", "Scale", "autoscaling", "v1"))
                scale_paths = ScalePaths(
                    scale.get("specReplicasPath", ".spec.replicas"),
                    scale.get("statusReplicasPath", ".status.replicas"),
                    scale.get("labelSelectorPath"),
                )
            schema_doc = (version.get("schema") or {}).get("openAPIV3Schema")
            infos.append(
                ResourceInfo(
                    group=spec["group"],
                    version=version["name"],
                    kind=names["kind"],
                    plural=names["plural"],
                    singular=names.get("singular") or names["kind"].lower(),
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    short_names=tuple(names.get("shortNames") or ()),
                    categories=tuple(names.get("categories") or ()),
                    subresources=tuple(subresources),
                    list_kind=names.get("listKind") or f"{names['kind']}List",
                    custom=True,
                    schema=StructuralSchema(schema_doc) if schema_doc else None,
                    printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                    scale_paths=scale_paths,
                    storage_version=storage,
                )
            )
        return infos

    def _serve_crd(self, crd: Obj) -> None:
        self.registry.register_crd(crd["metadata"]["name"], self.crd_resources(crd))

    def _unserve_crd(self, crd: Obj) -> None:
        removed = self.registry.unregister_crd(crd["metadata"]["name"])
        for info in removed[:1]:
            for obj in list(self.store.objects(info.key)):
                final = deep_copy(obj)
                self.store.commit(info.key, DELETED, final)
            self.store.drop_resource(info.key)

    def restore_crds(self) -> None:
        """Serve every stored CRD again (after loading objects from disk)."""
        for crd in self.store.objects(_CRD_KEY):
            self._serve_crd(crd)

"""CustomResourceDefinitions: admitting a CRD, then serving (or withdrawing) its resources."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from milkyway.sim.apiserver import errors
from milkyway.sim.apiserver.errors import Cause
from milkyway.sim.apiserver.resources import ResourceInfo, ResourceRegistry, ScalePaths
from milkyway.sim.apiserver.resources import Subresource as _Sub
from milkyway.sim.apiserver.store import DELETED, MODIFIED, Store, deep_copy
from milkyway.sim.apiserver.validation import StructuralSchema, validate_crd

Obj = dict[str, Any]
_CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


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
        ] + [c for kind, c in previous.items() if kind not in ("NamesAccepted", "Established")]

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

    # ----------------------------------------------------------------- CRD deletion

    def _terminate_crd(self, crd: Obj) -> tuple[Obj, bool]:
        """Delete a CRD as the real API server does: mark it Terminating (deletionTimestamp,
        the cleanup finalizer, a ``Terminating`` condition), delete every custom object
        (each honouring its own finalizers), and remove the CRD once the last one is gone.
        """
        name = crd["metadata"]["name"]
        if not crd["metadata"].get("deletionTimestamp"):
            new = deep_copy(crd)
            md = new["metadata"]
            md["deletionTimestamp"] = self.now()
            md["deletionGracePeriodSeconds"] = 0
            finalizers = list(md.get("finalizers") or [])
            if CLEANUP_FINALIZER not in finalizers:
                finalizers.append(CLEANUP_FINALIZER)
            md["finalizers"] = finalizers
            md["generation"] = md.get("generation", 1) + 1
            _set_condition(
                new,
                "Terminating",
                "True",
                "InstanceDeletionInProgress",
                "CustomResource deletion is in progress",
                self.now(),
            )
            self.store.commit(_CRD_KEY, MODIFIED, new)
            infos = self.registry.crd_infos(name)
            if infos:
                info = infos[0]
                for obj in list(self.store.objects(info.key)):
                    if obj["metadata"].get("deletionTimestamp"):
                        continue
                    self.delete_object(  # type: ignore[attr-defined]
                        info,
                        obj["metadata"]["name"],
                        namespace=obj["metadata"].get("namespace") or None,
                    )
            self._finish_crd_cleanup(name)
        still = self.store.get(_CRD_KEY, "", name)
        return (still or crd), still is None

    def _refuse_create_while_terminating(self, info: ResourceInfo) -> None:
        crd = self.store.get(_CRD_KEY, "", f"{info.plural}.{info.group}")
        if crd is not None and crd["metadata"].get("deletionTimestamp"):
            raise errors.method_not_allowed(
                "create not allowed while custom resource definition is terminating"
            )

    def _finish_crd_cleanup(self, crd_name: str) -> None:
        """Once a terminating CRD has no custom objects left, drop its cleanup finalizer
        (which removes it when no other finalizer holds it)."""
        crd = self.store.get(_CRD_KEY, "", crd_name)
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return
        if CLEANUP_FINALIZER not in (crd["metadata"].get("finalizers") or []):
            return
        infos = self.registry.crd_infos(crd_name)
        if infos and self.store.count(infos[0].key):
            return
        new = deep_copy(crd)
        _set_condition(
            new,
            "Terminating",
            "False",
            "InstanceDeletionCompleted",
            "removed all instances",
            self.now(),
        )
        self.store.commit(_CRD_KEY, MODIFIED, new)
        info = self.registry.require("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        self._drop_finalizer(info, "", crd_name, CLEANUP_FINALIZER)  # type: ignore[attr-defined]

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


def _set_condition(crd: Obj, kind: str, status: str, reason: str, message: str, now: str) -> None:
    conditions = crd.setdefault("status", {}).setdefault("conditions", [])
    for condition in conditions:
        if condition.get("type") == kind:
            if condition.get("status") != status:
                condition["lastTransitionTime"] = now
            condition.update(status=status, reason=reason, message=message)
            return
    conditions.append(
        {
            "type": kind,
            "status": status,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }
    )

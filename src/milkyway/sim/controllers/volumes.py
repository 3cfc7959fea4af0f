"""PersistentVolume / PersistentVolumeClaim binding and provisioning, pure core.

Classes with ``volumeBindingMode: Immediate`` get a volume as soon as the claim exists;
``WaitForFirstConsumer`` classes (the ``local`` class) wait until a pod using the claim
is bound to a node, then provision a ``local`` PV whose ``nodeAffinity`` pins it to that
node — which is what keeps a pod with local storage on its node for ever after.
Pre-created PVs are matched by class, access modes and capacity. Deleting a claim
releases its volume: ``Delete`` reclaims it, ``Retain`` leaves it ``Released``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from milkyway.sim.controllers.actions import PVCS, PVS, Action, Create, Delete, Event, Patch
from milkyway.sim.controllers.objects import (
    Obj,
    annotations_of,
    is_terminating,
    name_of,
    namespace_of,
    object_ref,
    parse_quantity,
    uid_of,
)

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONER_LOCAL = "sim.milkyway.io/local"
PROVISIONER_NETWORK = "sim.milkyway.io/network"
SOURCE = "persistentvolume-controller"


def default_storage_classes() -> list[Obj]:
    """``standard`` (default, network-attached, Immediate) and ``local`` (node-pinned)."""
    return [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "standard", "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
            "provisioner": PROVISIONER_NETWORK,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
            "allowVolumeExpansion": True,
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "local"},
            "provisioner": PROVISIONER_LOCAL,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    ]


def class_of(claim: Obj, classes: Mapping[str, Obj]) -> Obj | None:
    name = (claim.get("spec") or {}).get("storageClassName")
    if name is None:
        name = next(
            (
                n
                for n, c in classes.items()
                if annotations_of(c).get(DEFAULT_CLASS_ANNOTATION) == "true"
            ),
            None,
        )
    return classes.get(name) if name else None


def _requested(claim: Obj) -> float:
    storage = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get(
        "storage", "0"
    )
    return parse_quantity(storage)


def _claim_ref(claim: Obj) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": namespace_of(claim),
        "name": name_of(claim),
        "uid": uid_of(claim),
    }


def new_volume(claim: Obj, storage_class: Obj, node: str | None) -> Obj:
    spec = claim.get("spec") or {}
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    pv_spec: dict[str, Any] = {
        "capacity": {"storage": storage},
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
        "storageClassName": name_of(storage_class),
        "volumeMode": spec.get("volumeMode") or "Filesystem",
        "claimRef": _claim_ref(claim),
    }
    if node:
        pv_spec["local"] = {"path": f"/mnt/disks/pvc-{uid_of(claim)}"}
        pv_spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
                        ]
                    }
                ]
            }
        }
    else:
        pv_spec["csi"] = {"driver": PROVISIONER_NETWORK, "volumeHandle": f"vol-{uid_of(claim)}"}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{uid_of(claim)}",
            "annotations": {
                "pv.kubernetes.io/provisioned-by": storage_class.get("provisioner", "")
            },
        },
        "spec": pv_spec,
    }


def reconcile_claim(
    claim: Obj,
    *,
    classes: Mapping[str, Obj],
    volumes: Iterable[Obj],
    consumer_node: str | None,
) -> list[Action]:
    """Bind ``claim``: to its volume, to a matching free volume, or to a new one.

    ``consumer_node`` is the node of a scheduled pod using the claim, if any (what
    ``WaitForFirstConsumer`` waits for).
    """
    if is_terminating(claim):
        return []
    ns, name = namespace_of(claim), name_of(claim)
    spec = claim.get("spec") or {}
    status = claim.get("status") or {}
    by_name = {name_of(v): v for v in volumes}
    bound_name = spec.get("volumeName")
    if bound_name:
        pv = by_name.get(bound_name)
        if pv is None:
            if status.get("phase") != "Lost":
                return [
                    Patch(PVCS, ns, name, {"status": {"phase": "Lost"}}, "status"),
                    Event(
                        object_ref(claim),
                        "Warning",
                        "ClaimLost",
                        "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                        SOURCE,
                    ),
                ]
            return []
        return _mark_bound(claim, pv)
    storage_class = class_of(claim, classes)
    for pv in by_name.values():
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if ref.get("uid") == uid_of(claim) or (
            ref.get("name") == name and ref.get("namespace") == ns and not ref.get("uid")
        ):
            return _bind(claim, pv)
    wanted_class = name_of(storage_class) if storage_class else (spec.get("storageClassName") or "")
    for pv in sorted(
        by_name.values(),
        key=lambda v: parse_quantity(
            ((v.get("spec") or {}).get("capacity") or {}).get("storage", "0")
        ),
    ):
        pv_spec = pv.get("spec") or {}
        if (
            not pv_spec.get("claimRef")
            and (pv.get("status") or {}).get("phase", "Available") == "Available"
            and (pv_spec.get("storageClassName") or "") == wanted_class
            and set(spec.get("accessModes") or []) <= set(pv_spec.get("accessModes") or [])
            and parse_quantity((pv_spec.get("capacity") or {}).get("storage", "0"))
            >= _requested(claim)
        ):
            return _bind(claim, pv)
    if storage_class is None:
        if status.get("phase") != "Pending":
            return [Patch(PVCS, ns, name, {"status": {"phase": "Pending"}}, "status")]
        return []
    wait = storage_class.get("volumeBindingMode") == "WaitForFirstConsumer"
    if wait and not consumer_node:
        actions: list[Action] = []
        if status.get("phase") != "Pending":
            actions.append(Patch(PVCS, ns, name, {"status": {"phase": "Pending"}}, "status"))
            actions.append(
                Event(
                    object_ref(claim),
                    "Normal",
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding",
                    SOURCE,
                )
            )
        return actions
    local = storage_class.get("provisioner") == PROVISIONER_LOCAL
    pv = new_volume(claim, storage_class, consumer_node if local else None)
    return [
        Create(PVS, "", pv),
        Event(
            object_ref(claim),
            "Normal",
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {name_of(pv)}",
            storage_class.get("provisioner", ""),
        ),
    ]


def _bind(claim: Obj, pv: Obj) -> list[Action]:
    ns, name = namespace_of(claim), name_of(claim)
    return [
        Patch(PVS, "", name_of(pv), {"spec": {"claimRef": _claim_ref(claim)}}),
        Patch(PVCS, ns, name, {"spec": {"volumeName": name_of(pv)}}),
    ]


def _mark_bound(claim: Obj, pv: Obj) -> list[Action]:
    actions: list[Action] = []
    pv_spec = pv.get("spec") or {}
    claim_status = {
        "phase": "Bound",
        "accessModes": list(pv_spec.get("accessModes") or []),
        "capacity": dict(pv_spec.get("capacity") or {}),
    }
    old = claim.get("status") or {}
    if any(old.get(k) != v for k, v in claim_status.items()):
        actions.append(
            Patch(PVCS, namespace_of(claim), name_of(claim), {"status": claim_status}, "status")
        )
    if (pv.get("status") or {}).get("phase") not in ("Bound", "Failed"):
        actions.append(Patch(PVS, "", name_of(pv), {"status": {"phase": "Bound"}}, "status"))
    annotations = annotations_of(claim)
    if annotations.get("pv.kubernetes.io/bind-completed") != "yes":
        actions.append(
            Patch(
                PVCS,
                namespace_of(claim),
                name_of(claim),
                {"metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes"}}},
            )
        )
    return actions


def reconcile_volume(pv: Obj, claim: Obj | None) -> list[Action]:
    """A volume whose claim is gone is reclaimed (``Delete``) or left ``Released``."""
    if is_terminating(pv):
        return []
    spec = pv.get("spec") or {}
    ref = spec.get("claimRef")
    if not ref:
        if (pv.get("status") or {}).get("phase") is None:
            return [Patch(PVS, "", name_of(pv), {"status": {"phase": "Available"}}, "status")]
        return []
    if claim is not None and (not ref.get("uid") or uid_of(claim) == ref.get("uid")):
        return []
    if spec.get("persistentVolumeReclaimPolicy", "Retain") == "Delete":
        return [Delete(PVS, "", name_of(pv), uid=uid_of(pv))]
    if (pv.get("status") or {}).get("phase") != "Released":
        return [Patch(PVS, "", name_of(pv), {"status": {"phase": "Released"}}, "status")]
    return []


def claim_names(pod: Obj) -> list[str]:
    return [
        v["persistentVolumeClaim"].get("claimName", "")
        for v in (pod.get("spec") or {}).get("volumes") or []
        if v.get("persistentVolumeClaim")
    ]

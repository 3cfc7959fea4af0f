"""Endpoints and EndpointSlices of a Service from its selected pods, pure core.

Ready pods are ``addresses``; pods not yet ready are ``notReadyAddresses`` (or ready
ones when the Service sets ``publishNotReadyAddresses``); pods without an IP are left
out. The one EndpointSlice per Service mirrors the same set with per-endpoint
``ready``/``serving``/``terminating`` conditions, labelled as kube-controller-manager
labels its slices so that clients selecting by ``kubernetes.io/service-name`` find it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from milkyway.sim.controllers.actions import (
    ENDPOINT_SLICES,
    ENDPOINTS,
    Action,
    Create,
    Delete,
    Patch,
)
from milkyway.sim.controllers.objects import (
    Obj,
    controller_ref,
    is_pod_ready,
    is_terminating,
    labels_of,
    map_selector_matches,
    name_of,
    namespace_of,
    pod_phase,
    uid_of,
)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"


def selects(service: Obj, pod: Obj) -> bool:
    return namespace_of(service) == namespace_of(pod) and map_selector_matches(
        (service.get("spec") or {}).get("selector"), labels_of(pod)
    )


def _target_port(port: dict[str, Any], pods: list[Obj]) -> int:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for pod in pods:
        for container in (pod.get("spec") or {}).get("containers") or []:
            for cport in container.get("ports") or []:
                if cport.get("name") == target:
                    return int(cport.get("containerPort", 0))
    return int(port.get("port", 0))


def _address(pod: Obj) -> dict[str, Any]:
    address: dict[str, Any] = {
        "ip": (pod.get("status") or {}).get("podIP", ""),
        "targetRef": {
            "kind": "Pod",
            "namespace": namespace_of(pod),
            "name": name_of(pod),
            "uid": uid_of(pod),
        },
    }
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        address["nodeName"] = spec["nodeName"]
    if spec.get("hostname"):
        address["hostname"] = spec["hostname"]
    return address


def desired(service: Obj, pods: Iterable[Obj]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Endpoints ``subsets`` and the EndpointSlice ``endpoints``/``ports`` for a Service."""
    spec = service.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    members = sorted(
        (
            p
            for p in pods
            if (p.get("status") or {}).get("podIP") and pod_phase(p) not in ("Succeeded", "Failed")
        ),
        key=name_of,
    )
    ports = [
        {
            k: v
            for k, v in {
                "name": port.get("name"),
                "port": _target_port(port, members),
                "protocol": port.get("protocol", "TCP"),
                "appProtocol": port.get("appProtocol"),
            }.items()
            if v is not None
        }
        for port in spec.get("ports") or []
    ]
    ready, not_ready, slice_endpoints = [], [], []
    for pod in members:
        is_ready = is_pod_ready(pod) and not is_terminating(pod)
        (ready if is_ready or publish else not_ready).append(_address(pod))
        address = _address(pod)
        endpoint: dict[str, Any] = {
            "addresses": [address["ip"]],
            "conditions": {
                "ready": is_ready or publish,
                "serving": is_pod_ready(pod),
                "terminating": is_terminating(pod),
            },
            "targetRef": address["targetRef"],
        }
        if "nodeName" in address:
            endpoint["nodeName"] = address["nodeName"]
        if "hostname" in address:
            endpoint["hostname"] = address["hostname"]
        slice_endpoints.append(endpoint)
    subset: dict[str, Any] = {}
    if ready:
        subset["addresses"] = ready
    if not_ready:
        subset["notReadyAddresses"] = not_ready
    if subset and ports:
        subset["ports"] = ports
    return (
        {"subsets": [subset] if subset else []},
        {"endpoints": slice_endpoints, "ports": ports},
    )


def reconcile_service(
    service: Obj,
    pods: Iterable[Obj],
    endpoints: Obj | None,
    endpoint_slice: Obj | None,
    *,
    with_slice: bool = True,
) -> list[Action]:
    """Bring the Service's Endpoints and EndpointSlice in line with its selected pods."""
    ns, name = namespace_of(service), name_of(service)
    if not (service.get("spec") or {}).get("selector") or is_terminating(service):
        return []
    want_ep, want_slice = desired(service, pods)
    actions: list[Action] = []
    labels = {SERVICE_NAME_LABEL: name, **labels_of(service)}
    if endpoints is None:
        actions.append(
            Create(
                ENDPOINTS,
                ns,
                {
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": ns, "labels": labels_of(service)},
                    **want_ep,
                },
            )
        )
    elif (endpoints.get("subsets") or []) != want_ep["subsets"]:
        actions.append(Patch(ENDPOINTS, ns, name, {"subsets": want_ep["subsets"] or None}))
    slice_name = f"{name}-sim"
    if not with_slice:
        return actions
    if endpoint_slice is None:
        actions.append(
            Create(
                ENDPOINT_SLICES,
                ns,
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": slice_name,
                        "namespace": ns,
                        "labels": {**labels, MANAGED_BY_LABEL: MANAGED_BY},
                        "ownerReferences": [controller_ref(service)],
                    },
                    "addressType": "IPv4",
                    **want_slice,
                },
            )
        )
    elif (endpoint_slice.get("endpoints") or []) != want_slice["endpoints"] or (
        endpoint_slice.get("ports") or []
    ) != want_slice["ports"]:
        actions.append(
            Patch(
                ENDPOINT_SLICES,
                ns,
                name_of(endpoint_slice),
                # An EndpointSlice's endpoints list is required: an empty slice is [].
                {"endpoints": want_slice["endpoints"], "ports": want_slice["ports"] or None},
            )
        )
    return actions


def orphaned(endpoints: Obj, service: Obj | None) -> list[Action]:
    """Endpoints outlive nothing: without their Service they go (slices go by GC)."""
    if service is None and not is_terminating(endpoints):
        return [Delete(ENDPOINTS, namespace_of(endpoints), name_of(endpoints))]
    return []

"""What every namespace holds on a real cluster, kept there by controllers.

* The root CA publisher keeps a ``kube-root-ca.crt`` ConfigMap with the cluster CA
  (``ca.crt``) in every namespace, re-creating or repairing it when it is deleted or
  edited; pods' ``kube-api-access`` volumes read it. A cluster served without TLS has no
  CA to publish.
* The service account controller re-creates a namespace's ``default`` ServiceAccount
  when it is deleted (the API server creates the first one with the namespace).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from milkyway.sim.apiserver.admission import ROOT_CA_CONFIGMAP, default_service_account
from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.controllers.actions import Action, Create, Patch
from milkyway.sim.controllers.objects import Obj, is_terminating, name_of, namespace_of
from milkyway.sim.controllers.runtime import ControlPlane

_CONFIGMAPS = ("", "v1", "configmaps")
_SERVICEACCOUNTS = ("", "v1", "serviceaccounts")
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)


def root_ca_configmap(namespace: str, ca_pem: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": ROOT_CA_CONFIGMAP,
            "namespace": namespace,
            "annotations": {"kubernetes.io/description": DESCRIPTION},
        },
        "data": {"ca.crt": ca_pem},
    }


class NamespaceDefaultsController:
    """Keys are namespace names; woken by namespaces and by the objects it keeps."""

    name = "namespace-defaults"

    def setup(self, plane: ControlPlane) -> None:
        self.plane = plane
        api = plane.api
        self._unsubscribe: list[Callable[[], None]] = []
        for resource, selector in (
            ("v1/namespaces", None),
            ("v1/configmaps", f"metadata.name={ROOT_CA_CONFIGMAP}"),
            ("v1/serviceaccounts", "metadata.name=default"),
        ):
            try:
                self._unsubscribe.append(
                    api.subscribe(resource, self._on_event, field_selector=selector)
                )
            except ApiError as err:
                if err.code != 404:
                    raise

    def _on_event(self, event: object) -> None:
        obj = getattr(event, "object", None) or {}
        kind = obj.get("kind")
        key = name_of(obj) if kind == "Namespace" else namespace_of(obj)
        if key:
            self.plane.enqueue(self.name, key)

    def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    def reconcile(self, key: Hashable) -> list[Action]:
        namespace = str(key)
        store = self.plane.api.store
        ns = store.get(("", "namespaces"), "", namespace)
        if ns is None or is_terminating(ns):
            return []
        actions: list[Action] = []
        if store.get(("", "serviceaccounts"), namespace, "default") is None:
            actions.append(Create(_SERVICEACCOUNTS, namespace, default_service_account(namespace)))
        ca = self.plane.api.ca_pem
        if ca is not None:
            wanted = root_ca_configmap(namespace, ca.decode())
            current = store.get(("", "configmaps"), namespace, ROOT_CA_CONFIGMAP)
            if current is None:
                actions.append(Create(_CONFIGMAPS, namespace, wanted))
            elif current.get("data") != wanted["data"] or (
                (current["metadata"].get("annotations") or {}).get("kubernetes.io/description")
                != DESCRIPTION
            ):
                patch = {
                    "metadata": {"annotations": wanted["metadata"]["annotations"]},
                    "data": {**{k: None for k in current.get("data") or {}}, **wanted["data"]},
                }
                actions.append(Patch(_CONFIGMAPS, namespace, ROOT_CA_CONFIGMAP, patch))
        return actions

"""Admission of new pods and namespaces, as the real API server's plugins do it.

* **ServiceAccount**: a pod runs as a ServiceAccount that must exist in its namespace
  (``403`` otherwise, with the real message); unless the pod or its ServiceAccount set
  ``automountServiceAccountToken: false``, it gets the projected volume
  ``kube-api-access-<suffix>`` (a service account token, the ``kube-root-ca.crt`` CA bundle
  and the namespace) mounted read-only at ``/var/run/secrets/kubernetes.io/serviceaccount``
  in every container.
* **DefaultTolerationSeconds**: pods tolerate the ``not-ready`` and ``unreachable``
  ``NoExecute`` taints for 300 seconds unless they say otherwise.
* Every new namespace gets its ``default`` ServiceAccount at once (a real cluster's
  service account controller does it a moment later; pods created right after the
  namespace must not be refused here).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from milkyway.sim.apiserver.errors import ApiError

Obj = dict[str, Any]
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DEFAULT_TOLERATION_SECONDS = 300
_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"
SA_KEY = ("", "serviceaccounts")


def default_service_account(namespace: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": namespace},
    }


def token_volume(rng: random.Random) -> Obj:
    suffix = "".join(rng.choice(_SUFFIX_CHARS) for _ in range(5))
    return {
        "name": f"kube-api-access-{suffix}",
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "name": ROOT_CA_CONFIGMAP,
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {
                                    "apiVersion": "v1",
                                    "fieldPath": "metadata.namespace",
                                },
                            }
                        ]
                    }
                },
            ],
        },
    }


def admit_pod(
    pod: Obj, namespace: str, lookup: Callable[[str], Obj | None], rng: random.Random
) -> None:
    """Mutate a new pod as the ServiceAccount and DefaultTolerationSeconds plugins do.

    ``lookup(name)`` is the stored ServiceAccount of that name in the pod's namespace.
    """
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    if not isinstance(name, str):
        return
    spec["serviceAccountName"] = name
    spec["serviceAccount"] = name
    service_account = lookup(name)
    if service_account is None:
        pod_name = (pod.get("metadata") or {}).get("name") or ""
        raise ApiError(
            403,
            "Forbidden",
            f'pods "{pod_name}" is forbidden: error looking up service account '
            f'{namespace}/{name}: serviceaccount "{name}" not found',
            name=pod_name,
            kind="pods",
        )
    _tolerations(spec)
    if _automount(spec, service_account):
        _mount_token(spec, rng)


def _automount(spec: Obj, service_account: Obj) -> bool:
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    return service_account.get("automountServiceAccountToken") is not False


def _containers(spec: Obj) -> list[Obj]:
    return [
        c
        for key in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(key) or []
        if isinstance(c, dict)
    ]


def _mount_token(spec: Obj, rng: random.Random) -> None:
    containers = _containers(spec)
    if any(
        isinstance(m, dict) and m.get("mountPath") == MOUNT_PATH
        for c in containers
        for m in c.get("volumeMounts") or []
    ):
        return
    volumes = spec.get("volumes")
    if volumes is not None and not isinstance(volumes, list):
        return
    volume = token_volume(rng)
    spec["volumes"] = [*(volumes or []), volume]
    for container in containers:
        mounts = container.get("volumeMounts")
        if mounts is not None and not isinstance(mounts, list):
            continue
        container["volumeMounts"] = [
            *(mounts or []),
            {"name": volume["name"], "readOnly": True, "mountPath": MOUNT_PATH},
        ]


def _tolerations(spec: Obj) -> None:
    tolerations = spec.get("tolerations")
    if tolerations is not None and not isinstance(tolerations, list):
        return
    tolerations = list(tolerations or [])
    for taint in _TAINTS:
        if any(
            isinstance(t, dict)
            and t.get("effect") in (None, "", "NoExecute")
            and (t.get("key") == taint or (not t.get("key") and t.get("operator") == "Exists"))
            for t in tolerations
        ):
            continue
        tolerations.append(
            {
                "key": taint,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            }
        )
    spec["tolerations"] = tolerations

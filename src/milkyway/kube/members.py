"""Finding an Application's member pods across its clusters.

The management cluster knows where each zone runs (``Cluster`` resources and the
kubeconfig Secrets they name); each member cluster knows its pods, labelled with the
Application, component, zone and member identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import get_generic_resource
from lightkube.resources.core_v1 import Pod, Secret

from milkyway.kube.clients import (
    KubeconfigError,
    client_from_kubeconfig,
    kubeconfig_from_secret_data,
)
from milkyway.kube.labels import APPLICATION, COMPONENT, MEMBER, ZONE

ClusterResource = get_generic_resource("milkyway.ebay.com/v1", "Cluster")


class MemberLookupError(Exception):
    """A member cluster or pod cannot be found; the message says which and why."""


@dataclass(frozen=True)
class MemberPod:
    cluster: str
    zone: str
    namespace: str
    pod: str
    component: str
    member: str | None
    ready: bool
    node: str | None


async def cluster_client(mgmt: AsyncClient, cluster: str) -> AsyncClient:
    """A client of member cluster ``cluster``, from the kubeconfig its Cluster names."""
    try:
        resource = await mgmt.get(ClusterResource, cluster)  # type: ignore[arg-type]
    except ApiError as error:
        raise MemberLookupError(f"Cluster {cluster!r}: {error.status.message}") from None
    ref = (resource.get("spec") or {}).get("kubeconfigSecretRef") or {}
    namespace, name, key = (
        ref.get("namespace", ""),
        ref.get("name", ""),
        ref.get("key", "kubeconfig"),
    )
    try:
        secret = await mgmt.get(Secret, name, namespace=namespace)
        config = kubeconfig_from_secret_data(secret.data or {}, key)
    except ApiError as error:
        raise MemberLookupError(
            f"Cluster {cluster!r}: its kubeconfig Secret {namespace}/{name} cannot be read "
            f"({error.status.message})"
        ) from None
    except KubeconfigError as error:
        raise MemberLookupError(f"Cluster {cluster!r}: {error}") from None
    contexts = {c.get("name") for c in config.get("contexts") or []}
    return client_from_kubeconfig(config, cluster if cluster in contexts else None)


async def member_pods(
    client: AsyncClient,
    namespace: str,
    application: str,
    zone: str,
    cluster: str,
    component: str | None = None,
) -> list[MemberPod]:
    """The pods of ``application`` (one component or all) in one zone's cluster."""
    labels: dict[str, Any] = {APPLICATION: application, ZONE: zone}
    if component is not None:
        labels[COMPONENT] = component
    pods: list[MemberPod] = []
    async for pod in client.list(Pod, namespace=namespace, labels=labels):
        meta = pod.metadata
        status = pod.status
        assert meta is not None and meta.name is not None
        ready = (
            any(c.type == "Ready" and c.status == "True" for c in (status.conditions or []))
            if status is not None
            else False
        )
        pods.append(
            MemberPod(
                cluster=cluster,
                zone=zone,
                namespace=namespace,
                pod=meta.name,
                component=(meta.labels or {}).get(COMPONENT, ""),
                member=(meta.labels or {}).get(MEMBER),
                ready=ready,
                node=pod.spec.nodeName if pod.spec is not None else None,
            )
        )
    return sorted(pods, key=lambda p: (p.component, p.zone, p.pod))

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


SecretRef = tuple[str, str, str]
"""(namespace, name, key) of the Secret holding a member cluster's kubeconfig."""


class ClusterAccessError(MemberLookupError):
    """A member cluster's kubeconfig Secret cannot be read or used. ``reason`` is the
    Cluster condition reason the operator reports it with."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def secret_ref(resource: dict[str, Any]) -> SecretRef:
    """The kubeconfig Secret a ``Cluster`` resource names (``key`` defaults to
    ``kubeconfig``)."""
    ref = (resource.get("spec") or {}).get("kubeconfigSecretRef") or {}
    return (ref.get("namespace", ""), ref.get("name", ""), ref.get("key", "kubeconfig"))


async def client_from_secret(
    mgmt: AsyncClient, cluster: str, ref: SecretRef, *, request_timeout: float = 30.0
) -> AsyncClient:
    """A client of member cluster ``cluster`` from the kubeconfig Secret ``ref`` in the
    management cluster, using the kubeconfig's context named like the cluster when it has
    one (as ``milkyway cluster register`` writes it), else its current context;
    ``request_timeout``: seconds the client waits for each answer."""
    namespace, name, key = ref
    try:
        secret = await mgmt.get(Secret, name, namespace=namespace)
        config = kubeconfig_from_secret_data(secret.data or {}, key)
    except ApiError as error:
        raise ClusterAccessError(
            "KubeconfigSecretNotFound" if error.status.code == 404 else "SecretError",
            f"Secret {namespace}/{name} could not be read ({error.status.message}); "
            f"create it with the cluster's kubeconfig under data.{key}",
        ) from None
    except KubeconfigError as error:
        raise ClusterAccessError(
            "KubeconfigInvalid", f"Secret {namespace}/{name}: {error}"
        ) from None
    contexts = {c.get("name") for c in config.get("contexts") or []}
    context = cluster if cluster in contexts else None
    return client_from_kubeconfig(config, context, timeout=request_timeout)


async def cluster_client(mgmt: AsyncClient, cluster: str) -> AsyncClient:
    """A client of member cluster ``cluster``, from the kubeconfig its Cluster names."""
    try:
        resource = await mgmt.get(ClusterResource, cluster)  # type: ignore[arg-type]
    except ApiError as error:
        raise MemberLookupError(f"Cluster {cluster!r}: {error.status.message}") from None
    try:
        return await client_from_secret(mgmt, cluster, secret_ref(resource))
    except ClusterAccessError as error:
        raise ClusterAccessError(error.reason, f"Cluster {cluster!r}: {error}") from None


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

"""The ``Cluster`` resource: one member Kubernetes cluster, serving one zone of a region."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from milkyway.model.base import API_VERSION, Condition, DnsLabel, Model, ObjectMeta
from milkyway.model.crd_schema import AGE_COLUMN, CrdInfo, PrinterColumn


class SecretKeyRef(Model):
    """Where the kubeconfig of the member cluster is stored in the management cluster."""

    name: DnsLabel
    """Secret name."""
    namespace: DnsLabel
    """Secret namespace (Cluster is cluster-scoped, so the namespace is explicit)."""
    key: str = Field(default="kubeconfig", min_length=1)
    """Key of the kubeconfig inside the Secret."""


class ClusterSpec(Model):
    """Where the cluster is and how to reach it."""

    region: str = Field(min_length=1, max_length=63)
    """Region the cluster belongs to, e.g. ``NA``."""
    zone: DnsLabel
    """Zone the cluster serves, e.g. ``phx``."""
    kubeconfig_secret_ref: SecretKeyRef
    """Secret holding the kubeconfig Milkyway uses to reach the cluster."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free labels used to select clusters (hardware, tier, …)."""
    dns_domain: str = Field(default="cluster.local", min_length=1)
    """The cluster's own DNS domain (kubelet ``clusterDomain``)."""
    cluster_set_domain: str = Field(default="clusterset.local", min_length=1)
    """Domain under which other clusters resolve this cluster's pods (multi-cluster DNS)."""
    namespaces: list[DnsLabel] = Field(default_factory=list)
    """The namespaces Milkyway manages in this cluster (``milkyway cluster register
    --namespace``): the operator watches and changes objects only there, which is all its
    account in the cluster may do. Empty: every namespace."""


class NodeCounts(Model):
    """How many of a member cluster's Nodes are Ready."""

    ready: int = Field(default=0, ge=0)
    """Nodes whose Ready condition is True."""
    total: int = Field(default=0, ge=0)
    """All Nodes."""


class ClusterStatus(Model):
    """Health of the connection to the member cluster, written by the operator."""

    reachable: bool | None = None
    """Whether the last heartbeat reached the cluster's API server."""
    version: str | None = None
    """Kubernetes version the cluster reported, e.g. ``v1.32.2``."""
    last_heartbeat_time: str | None = None
    """RFC 3339 time of the last successful heartbeat."""
    nodes: NodeCounts | None = None
    """The cluster's Nodes as the operator last saw them; absent until it has listed them."""
    conditions: list[Condition] = Field(default_factory=list)
    """Latest observations."""


class Cluster(Model):
    """A member Kubernetes cluster Milkyway deploys to."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        plural="clusters",
        scope="Cluster",
        short_names=("mwcluster", "mwc"),
        printer_columns=(
            PrinterColumn("Region", ".spec.region"),
            PrinterColumn("Zone", ".spec.zone"),
            PrinterColumn("Reachable", ".status.reachable", "boolean"),
            PrinterColumn("Version", ".status.version"),
            PrinterColumn("Heartbeat", ".status.lastHeartbeatTime", "date"),
            AGE_COLUMN,
        ),
    )

    api_version: Literal["milkyway.ebay.com/v1"] = API_VERSION
    kind: Literal["Cluster"] = "Cluster"
    metadata: ObjectMeta
    spec: ClusterSpec
    status: ClusterStatus = Field(default_factory=ClusterStatus)

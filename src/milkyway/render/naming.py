"""Names of rendered objects and the DNS names members use to reach each other.

Every object of a component in a zone is named from ``<application>-<component>-<zone>``
(the *base*), so components, zones and applications sharing a namespace never clash.

Cross-zone wiring follows the Kubernetes Multi-Cluster Services DNS scheme (KEP-1645):

* a member's cluster-local name is ``<hostname>.<base>.<namespace>.svc.<dnsDomain>``;
* its cluster-set name is ``<hostname>.<cluster>.<base>.<namespace>.svc.<clusterSetDomain>``
  where ``<cluster>`` is the name of the member's Cluster resource;
* a whole zone's Service is ``<base>.<namespace>.svc.<dnsDomain>`` locally and
  ``<base>.<namespace>.svc.<clusterSetDomain>`` in the cluster set.

Local names are used only within a component that lives in a single zone (and by
dependants in that zone); see :func:`milkyway.render.context.is_local`.

``dnsDomain`` (default ``cluster.local``) and ``clusterSetDomain`` (default
``clusterset.local``) come from each zone's Cluster resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from milkyway.model.cluster import Cluster


@dataclass(frozen=True)
class ZoneDns:
    """DNS facts of the cluster serving one zone."""

    cluster: str
    dns_domain: str = "cluster.local"
    cluster_set_domain: str = "clusterset.local"


def zone_dns(zone: str, clusters: Mapping[str, Cluster]) -> ZoneDns:
    """The DNS facts of ``zone``: from its Cluster if registered, else the defaults with the
    zone name as cluster name."""
    cluster = clusters.get(zone)
    if cluster is None:
        return ZoneDns(cluster=zone)
    return ZoneDns(
        cluster=cluster.metadata.name,
        dns_domain=cluster.spec.dns_domain,
        cluster_set_domain=cluster.spec.cluster_set_domain,
    )


def base_name(application: str, component: str, zone: str) -> str:
    return f"{application}-{component}-{zone}"


def member_name(base: str, member_id: int) -> str:
    """Name of a member's own objects (Deployment, Pod, PVC) in the per-member patterns."""
    return f"{base}-m{member_id}"


def statefulset_hostname(base: str, ordinal: int) -> str:
    return f"{base}-{ordinal}"


def pod_host(hostname: str, base: str, namespace: str, dns: ZoneDns, local: bool) -> str:
    """DNS name of one member, as resolved from the same zone (``local``) or another zone."""
    if local:
        return f"{hostname}.{base}.{namespace}.svc.{dns.dns_domain}"
    return f"{hostname}.{dns.cluster}.{base}.{namespace}.svc.{dns.cluster_set_domain}"


def service_host(base: str, namespace: str, dns: ZoneDns, local: bool) -> str:
    """DNS name of a zone's Service, from the same zone (``local``) or another zone."""
    domain = dns.dns_domain if local else dns.cluster_set_domain
    return f"{base}.{namespace}.svc.{domain}"

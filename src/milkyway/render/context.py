"""The variables ComponentType templates see, for one component in one zone.

Hosts are always given as seen *from the zone being rendered*: a member in the same zone
gets its cluster-local name, a member elsewhere its cluster-set name (see
:mod:`milkyway.render.naming`). Dependencies appear under ``deps.<binding>`` with the
exports of the bound component, evaluated from the same zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from milkyway.model.cluster import Cluster
from milkyway.model.resolve import ResolvedApplication, ResolvedComponent, ResolvedZone
from milkyway.render.naming import (
    base_name,
    member_name,
    pod_host,
    service_host,
    statefulset_hostname,
    zone_dns,
)
from milkyway.render.templating import render_template

CONFIG_DIR = "/etc/milkyway/config"


def member_hostname(component: ResolvedComponent, base: str, ordinal: int, member_id: int) -> str:
    """The pod hostname of a member: the StatefulSet ordinal name or the per-member name."""
    if component.workload == "statefulset":
        return statefulset_hostname(base, ordinal)
    return member_name(base, member_id)


def members(
    app: ResolvedApplication,
    component: ResolvedComponent,
    from_zone: str,
    clusters: Mapping[str, Cluster],
) -> list[dict[str, Any]]:
    """Every member of ``component`` in every zone, addressed from ``from_zone``."""
    result = []
    for zone in component.zones:
        base = base_name(app.name, component.name, zone.name)
        dns = zone_dns(zone.name, clusters)
        local = is_local(component, zone.name, from_zone)
        for ordinal, member_id in enumerate(zone.member_ids):
            if component.workload == "deployment":
                hostname = base
                host = service_host(base, app.namespace, dns, local)
            else:
                hostname = member_hostname(component, base, ordinal, member_id)
                host = pod_host(hostname, base, app.namespace, dns, local)
            result.append(
                {
                    "id": member_id,
                    "ordinal": ordinal,
                    "zone": zone.name,
                    "region": zone.region,
                    "hostname": hostname,
                    "host": host,
                }
            )
    return result


def is_local(component: ResolvedComponent, zone: str, from_zone: str) -> bool:
    """Whether members in ``zone`` are addressed by their cluster-local names from
    ``from_zone``: only when the component lives in that one zone. A component spanning
    zones uses cluster-set names everywhere, so every member sees the same peer list (etcd
    derives its cluster id from it; Kafka brokers hand their address to other zones)."""
    return zone == from_zone and len(component.zones) == 1


def home_zone(component: ResolvedComponent, from_zone: str) -> ResolvedZone:
    """The zone of ``component`` that serves ``from_zone``: the same zone if the component
    runs there, else its first non-empty zone."""
    for zone in component.zones:
        if zone.name == from_zone:
            return zone
    return next((z for z in component.zones if z.size > 0), component.zones[0])


def template_context(
    app: ResolvedApplication,
    component: ResolvedComponent,
    zone: ResolvedZone,
    clusters: Mapping[str, Cluster],
    from_zone: str | None = None,
) -> dict[str, Any]:
    """The template variables for ``component`` in ``zone`` (hosts seen from ``from_zone``,
    default ``zone`` itself)."""
    viewer = from_zone or zone.name
    serving = home_zone(component, viewer) if from_zone else zone
    base = base_name(app.name, component.name, serving.name)
    dns = zone_dns(serving.name, clusters)
    all_members = members(app, component, viewer, clusters)
    identity = component.type.spec.identity
    return {
        "app": {"name": app.name, "namespace": app.namespace},
        "component": {
            "name": component.name,
            "type": component.type.name,
            "version": zone.version,
            "workload": component.workload,
            "size": component.size,
        },
        "zone": {
            "name": zone.name,
            "region": zone.region,
            "size": zone.size,
            "cluster": zone_dns(zone.name, clusters).cluster,
        },
        "params": dict(zone.params),
        "ports": {port.name: port.port for port in component.type.spec.ports},
        "members": all_members,
        "zone_members": [m for m in all_members if m["zone"] == zone.name],
        "service": service_host(
            base, app.namespace, dns, is_local(component, serving.name, viewer)
        ),
        "paths": {"config": CONFIG_DIR, "data": component.type.spec.container.data_path},
        "identity": identity.param if identity else None,
        "deps": dependencies(app, component, viewer, clusters),
    }


def dependencies(
    app: ResolvedApplication,
    component: ResolvedComponent,
    from_zone: str,
    clusters: Mapping[str, Cluster],
) -> dict[str, dict[str, Any] | None]:
    """``deps`` of the templates: each declared dependency, ``None`` when optional and
    unbound, else the bound component's name and exports."""
    result: dict[str, dict[str, Any] | None] = {}
    for dependency in component.type.spec.dependencies:
        target_name = component.bindings.get(dependency.name)
        if target_name is None:
            result[dependency.name] = None
            continue
        target = app.components[target_name]
        result[dependency.name] = {
            "component": target.name,
            **exports(app, target, from_zone, clusters),
        }
    return result


def exports(
    app: ResolvedApplication,
    component: ResolvedComponent,
    from_zone: str,
    clusters: Mapping[str, Cluster],
) -> dict[str, str]:
    """The values ``component`` exports to dependants in ``from_zone``."""
    zone = home_zone(component, from_zone)
    context = template_context(app, component, zone, clusters, from_zone=from_zone)
    return {
        export.name: render_template(
            export.template, context, f"ComponentType {component.type.name} export {export.name}"
        ).strip()
        for export in component.type.spec.exports
    }

"""Asking for the rotation of a generated Secret: a ``milkyway-rotate-secret`` FlowRun in
the Application's namespace, owned by the Application and labelled with its component, so
the operator's engine runs it under the component's lock (no other flow changes the
component meanwhile) and the planner counts the component as busy until it ends.

Everything the flow needs is worked out here, before anything is written: the component
and its type, the declared secret (which must be generated), and the cluster of every
zone; a request that cannot run is refused naming what is wrong and changes nothing.
"""

from __future__ import annotations

import time
from typing import Any

from lightkube import AsyncClient

from milkyway.flows.engine import new_run
from milkyway.flows.kube_store import KubeStore
from milkyway.kube.applications import component_types, get_application
from milkyway.kube.generated_secrets import generated_secret_name
from milkyway.kube.labels import APPLICATION, COMPONENT, selector_labels
from milkyway.kube.members import ClusterResource
from milkyway.model.application import Application
from milkyway.model.resolve import resolve
from milkyway.operator.flows_catalog import build_catalog
from milkyway.operator.reconciler import OPERATION_LABEL, place_zones

ROTATE_FLOW = "milkyway-rotate-secret"
OPERATION = "rotate-secret"


class RotationRefused(ValueError):
    """The rotation cannot be asked for as given; the message says why and what to do."""


async def rotation_params(
    client: AsyncClient, live: dict[str, Any], component: str, secret: str
) -> dict[str, Any]:
    """The flow's parameters for rotating ``secret`` of ``component`` of ``live``."""
    app = Application.model_validate(live)
    name, namespace = app.metadata.name, app.metadata.namespace or "default"
    resolved = resolve(app, await component_types(client))
    found = resolved.components.get(component)
    if found is None:
        known = ", ".join(resolved.components) or "none"
        raise RotationRefused(f"{name} has no component {component!r} (components: {known})")
    generated = [s for s in found.type.spec.agent.secrets if s.generate is not None]
    declared = next((s for s in generated if s.name == secret), None)
    if declared is None or declared.generate is None:
        names = ", ".join(s.name for s in generated) or "none"
        raise RotationRefused(
            f"--secret {secret!r}: ComponentType {found.type.name} declares no generated "
            f"secret of that name (generated secrets: {names}); only a secret declared in "
            "spec.agent.secrets with generate can be rotated"
        )
    clusters = [dict(c) async for c in client.list(ClusterResource)]
    placement = place_zones(app, clusters)
    zones = []
    for zone in found.zones:
        cluster = placement.clusters.get(zone.name)
        if cluster is None:
            raise RotationRefused(
                f"zone {zone.name} of {component} has no Cluster: "
                f"{'; '.join(placement.missing) or 'none registered'}"
            )
        zones.append(
            {
                "cluster": cluster,
                "namespace": namespace,
                "selector": selector_labels(name, component, zone.name),
            }
        )
    return {
        "application": name,
        "namespace": namespace,
        "component": component,
        "declared": secret,
        "secret": generated_secret_name(name, component, secret),
        "key": declared.generate.key,
        "length": declared.generate.length,
        "alphabet": declared.generate.alphabet,
        "source": {"cluster": zones[0]["cluster"], "namespace": namespace},
        "zones": zones,
    }


async def request_rotation(
    client: AsyncClient,
    name: str,
    namespace: str,
    component: str,
    secret: str,
    *,
    requested_by: str,
    stamp: float | None = None,
) -> str:
    """Create the rotation's FlowRun and return its name."""
    live = await get_application(client, name, namespace)
    params = await rotation_params(client, live, component, secret)
    moment = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() if stamp is None else stamp))
    metadata = live["metadata"]
    owner = (
        [
            {
                "apiVersion": live.get("apiVersion") or "milkyway.ebay.com/v1",
                "kind": "Application",
                "name": name,
                "uid": metadata["uid"],
                "controller": True,
            }
        ]
        if metadata.get("uid")
        else []
    )
    run = new_run(
        build_catalog(),
        None,
        ROTATE_FLOW,
        params,
        target=f"{namespace}/{name}",
        requested_by=requested_by,
        name=f"{name}-{component}-rotate-{secret}-{moment}",
        namespace=namespace,
        labels={APPLICATION: name, COMPONENT: component, OPERATION_LABEL: OPERATION},
        owner_references=owner,
    )
    created = await KubeStore(client, namespace).create(run)
    assert created.metadata.name is not None
    return created.metadata.name

"""A minimal kopf operator: the peer of ``bench/operator_peer_kopf.py``.

It reacts to a change of an Application's spec as Milkyway's operator does, minus the
deciding: it creates a FlowRun labelled like Milkyway's config-update runs, so the same
watch measures both. Run by the benchmark as
``python -m kopf run --standalone --namespace=NS bench/kopf_peer_operator.py``.
"""

from __future__ import annotations

import uuid
from typing import Any

import kopf
from lightkube import AsyncClient, KubeConfig

from milkyway.kube.labels import APPLICATION as APP_LABEL
from milkyway.kube.resources import FLOWRUN
from milkyway.operator.reconciler import OPERATION_LABEL

CLIENTS: list[AsyncClient] = []


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False  # Milkyway's latency figure does not wait on Events
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage()
    CLIENTS.append(AsyncClient(KubeConfig.from_env()))


@kopf.on.cleanup()
async def close(**_: Any) -> None:
    for client in CLIENTS:
        await client.close()


@kopf.on.update("milkyway.ebay.com", "v1", "applications", field="spec")
async def spec_changed(name: str, namespace: str, **_: Any) -> None:
    run = {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "FlowRun",
        "metadata": {
            "name": f"kopf-{name}-{uuid.uuid4().hex[:8]}",
            "namespace": namespace,
            "labels": {APP_LABEL: name, OPERATION_LABEL: "config-update"},
        },
        "spec": {"flow": "kopf-peer", "target": name},
    }
    await CLIENTS[0].create(FLOWRUN.from_dict(run), namespace=namespace)

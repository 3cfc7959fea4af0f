"""From a Cluster to a client of that member cluster, the one path the operator's
registry and the CLI share: the Cluster names a kubeconfig Secret, the Secret holds a
kubeconfig whose context is named like the Cluster."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube.resources.core_v1 import Namespace

from milkyway.kube.members import ClusterAccessError, cluster_client
from milkyway.kube.resources import CLUSTER


async def test_a_registered_cluster_gives_a_working_client(world: Any) -> None:
    client = await cluster_client(world.mgmt, "na-phx-1")
    try:
        names = [ns.metadata.name async for ns in client.list(Namespace)]
    finally:
        await client.close()
    assert "default" in names


async def test_a_cluster_without_its_secret_is_named_with_the_reason(world: Any) -> None:
    await world.mgmt.create(
        CLUSTER.from_dict(
            {
                "apiVersion": "milkyway.ebay.com/v1",
                "kind": "Cluster",
                "metadata": {"name": "secretless"},
                "spec": {
                    "region": "NA",
                    "zone": "nowhere",
                    "kubeconfigSecretRef": {"name": "absent", "namespace": "milkyway-system"},
                },
            }
        )
    )
    with pytest.raises(ClusterAccessError) as caught:
        await cluster_client(world.mgmt, "secretless")
    assert caught.value.reason == "KubeconfigSecretNotFound"
    assert str(caught.value).startswith("Cluster 'secretless': Secret milkyway-system/absent")

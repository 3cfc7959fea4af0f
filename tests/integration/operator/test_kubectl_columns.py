"""``kubectl get applications`` shows how many members are Ready out of how many."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

from .conftest import ensure_namespace
from .test_lifecycle import running

NAMESPACE = "columns"


def _application() -> dict[str, Any]:
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "Application",
        "metadata": {"name": "zk", "namespace": NAMESPACE},
        "spec": {
            "components": [
                {
                    "name": "zookeeper1",
                    "version": "3.4.7",
                    "regions": [
                        {
                            "name": "NA",
                            "zones": [{"name": "phx", "size": 3}, {"name": "slc", "size": 2}],
                        }
                    ],
                }
            ]
        },
    }


async def test_kubectl_get_applications_shows_ready_and_health(world: Any) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing: apt-get install kubectl (scripts/bootstrap.sh)"
    await ensure_namespace(world.mgmt, NAMESPACE)
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(_application())

        async def ready() -> bool:
            return running(await world.application(NAMESPACE, "zk"))

        await world.eventually(ready, within=120, what="zk Ready")
    process = await asyncio.create_subprocess_exec(
        kubectl,
        f"--kubeconfig={world.sim.kubeconfig_path}",
        "--context=mgmt",
        "get",
        "applications",
        "-n",
        NAMESPACE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    header, row = out.decode().splitlines()
    assert header.split() == ["NAME", "PHASE", "READY", "HEALTH", "FLOW", "AGE"], header
    assert row.split()[:3] == ["zk", "Running", "5/5"], row

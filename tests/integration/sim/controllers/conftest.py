"""Fixtures: one in-process cluster with a fast control plane, polling helpers, and the
command-line clients (kubectl, ``milkyway sim fault``) the HTTP-level tests drive."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.controllers.config import ControlPlaneConfig, StageDelays
from milkyway.sim.controllers.kubelet import Kubelet
from milkyway.sim.controllers.manager import start_control_plane
from milkyway.sim.controllers.runtime import ControlPlane
from milkyway.sim.faults import ClusterTarget, Faults


@dataclass
class Sim:
    api: ClusterAPI
    plane: ControlPlane
    faults: Faults

    def pod(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        return self.plane.pods.get(namespace, name)

    def events(self, name: str, reason: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.api.list("v1/events")["items"]
            if e["involvedObject"].get("name") == name and (reason is None or e["reason"] == reason)
        ]


async def run(*argv: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin)
    return proc.returncode or 0, out.decode(), err.decode()


@dataclass
class ClusterCli:
    """kubectl on one context of a simulator's kubeconfig, and ``milkyway sim fault``.

    kubectl gets a fresh ``--cache-dir``; the fault CLI runs as its own process and finds
    the simulator through ``<kubeconfig>.admin.json``, as a user's shell would.
    """

    kubeconfig: Path
    cache: Path
    context: str = "east"

    async def kubectl(
        self, *args: str, stdin: bytes | None = None, check: bool = True
    ) -> tuple[int, str, str]:
        binary = shutil.which("kubectl")
        if binary is None:
            pytest.fail("kubectl v1.32 is needed on PATH for this test (install kubectl)")
        rc, out, err = await run(
            binary,
            f"--kubeconfig={self.kubeconfig}",
            f"--context={self.context}",
            f"--cache-dir={self.cache}",
            "--request-timeout=10s",
            *args,
            stdin=stdin,
        )
        if check and rc != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({rc}): {err}")
        return rc, out, err

    async def output(self, *args: str, stdin: bytes | None = None) -> str:
        """What a kubectl command that must succeed prints."""
        return (await self.kubectl(*args, stdin=stdin))[1]

    async def jsonpath(self, kind: str, name: str, path: str) -> str:
        return await self.output("get", kind, name, "-o", f"jsonpath={path}")

    async def fault(self, *args: str) -> str:
        rc, out, err = await run(
            sys.executable,
            "-m",
            "milkyway.cli.sim_fault",
            *args,
            "--kubeconfig",
            str(self.kubeconfig),
        )
        if rc != 0:
            raise AssertionError(f"milkyway sim fault {' '.join(args)} failed: {err}")
        return out


def sts_manifest(
    name: str = "web",
    replicas: int = 3,
    image: str = "nginx:1.27",
    *,
    storage_class: str | None = "local",
    strategy: dict[str, Any] | None = None,
    policy: str = "OrderedReady",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "serviceName": name,
        "podManagementPolicy": policy,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": image}]},
        },
    }
    if storage_class is not None:
        spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": storage_class,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        ]
    if strategy is not None:
        spec["updateStrategy"] = strategy
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def make_sim(api: ClusterAPI, plane: ControlPlane) -> Sim:
    faults = Faults()
    kubelet = plane.controllers["kubelet"]
    assert isinstance(kubelet, Kubelet)
    faults.register(ClusterTarget(api.name, plane, kubelet))
    return Sim(api, plane, faults)


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    api = ClusterAPI(name="test")
    plane = start_control_plane(api, 3, ControlPlaneConfig.fast())
    try:
        yield make_sim(api, plane)
    finally:
        await plane.stop()


@pytest.fixture
async def slow_sim() -> AsyncIterator[Sim]:
    """Stages take a few jittered milliseconds, so transitions interleave."""
    api = ClusterAPI(name="test")
    config = ControlPlaneConfig.fast(
        delays=StageDelays(creating=0.01, ready=0.02, terminating=0.01, jitter=1.0)
    )
    plane = start_control_plane(api, 3, config)
    try:
        yield make_sim(api, plane)
    finally:
        await plane.stop()

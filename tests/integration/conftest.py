"""Fixtures for tests against simulated clusters: the clusters and a real ``kubectl``.

kubectl runs as an asyncio subprocess because the simulated API server lives on the
test's own event loop; a blocking call would deadlock it. Each kubectl gets a fresh
``--cache-dir`` so discovery changes (new CRDs) are seen at once.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from milkyway.sim.clusters import SimulatedClusters


@dataclass
class KubectlResult:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Kubectl:
    """Runs the ``kubectl`` on PATH against one context of a simulator's kubeconfig."""

    kubeconfig: Path
    context: str
    cache_dir: Path

    async def run(
        self, *args: str, stdin: str | None = None, check: bool = True, limit: float = 60
    ) -> KubectlResult:
        binary = shutil.which("kubectl")
        if binary is None:
            pytest.fail("kubectl is not on PATH: install kubectl 1.32 (Debian: kubernetes-client)")
        proc = await asyncio.create_subprocess_exec(
            binary,
            f"--kubeconfig={self.kubeconfig}",
            f"--context={self.context}",
            f"--cache-dir={self.cache_dir}",
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), limit
        )
        result = KubectlResult(proc.returncode or 0, out.decode(), err.decode())
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        """Start a long-running kubectl (``get -w``) whose output the test reads."""
        binary = shutil.which("kubectl")
        if binary is None:
            pytest.fail("kubectl is not on PATH: install kubectl 1.32 (Debian: kubernetes-client)")
        return await asyncio.create_subprocess_exec(
            binary,
            f"--kubeconfig={self.kubeconfig}",
            f"--context={self.context}",
            f"--cache-dir={self.cache_dir}",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimulatedClusters]:
    """Two simulated clusters, ``c1`` and ``c2``, with a kubeconfig in ``tmp_path``."""
    async with SimulatedClusters(
        ["c1", "c2"], kubeconfig_path=tmp_path / "kubeconfig", bookmark_interval=0.2
    ) as clusters:
        yield clusters


@pytest.fixture
def kubectl(sim: SimulatedClusters, tmp_path: Path) -> Kubectl:
    """kubectl against cluster ``c1`` with a fresh discovery cache."""
    return Kubectl(sim.kubeconfig_path, "c1", tmp_path / "kube-cache")

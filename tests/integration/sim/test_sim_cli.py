"""``milkyway sim up`` as a user runs it: a kubeconfig with one context per cluster, and
objects kept across a restart with ``--data-dir``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import yaml

from milkyway.sim.clusters import SimulatedClusters

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "notes.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "notes", "singular": "note", "kind": "Note"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


async def _sim_up(tmp_path: Path, *extra: str) -> tuple[int, str, dict]:
    kubeconfig = tmp_path / "kc"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "milkyway.cli.main",
        "sim",
        "up",
        "--clusters",
        "mgmt,na-phx",
        "--kubeconfig",
        str(kubeconfig),
        "--nodes",
        "0",
        "--exit-after",
        "1",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), yaml.safe_load(kubeconfig.read_text())


async def test_sim_up_writes_a_kubeconfig_per_cluster(tmp_path: Path) -> None:
    code, output, config = await _sim_up(tmp_path)
    assert code == 0, output
    assert [c["name"] for c in config["contexts"]] == ["mgmt", "na-phx"]
    servers = [c["cluster"]["server"] for c in config["clusters"]]
    assert all(s.startswith("https://127.0.0.1:") for s in servers)
    assert len(set(servers)) == 2
    assert all(c["cluster"]["certificate-authority-data"] for c in config["clusters"])
    assert all(u["user"]["token"] for u in config["users"])
    assert "stopped" in output


async def test_custom_resources_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with SimulatedClusters(["c1"], data_dir=data) as sim:
        api = sim["c1"].api
        api.create(CRD)
        api.create(
            {
                "apiVersion": "example.com/v1",
                "kind": "Note",
                "metadata": {"name": "n"},
                "text": "kept",
            }
        )
    async with SimulatedClusters(["c1"], data_dir=data) as sim:
        note = sim["c1"].api.get("notes.example.com", "n")
        assert note["text"] == "kept"
        assert "notes" in [i.plural for i in sim["c1"].api.registry]

"""``milkyway apply`` by a user whose rights end at one namespace (a RoleBinding, no
cluster-scope reads): it applies, validating against the built-in types, and says so."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from lightkube import codecs
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace
from typer.testing import CliRunner

from milkyway.cli.main import app
from milkyway.kube.clients import client_from_kubeconfig
from milkyway.kube.resources import APPLICATION
from milkyway.model.crds import all_crds
from milkyway.sim.clusters import SimulatedClusters

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "stream1.yaml"

EDITOR_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "milkyway-editor", "namespace": "team"},
    "rules": [
        {
            "apiGroups": ["milkyway.ebay.com"],
            "resources": ["applications", "flowruns", "flows"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        }
    ],
}
BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "RoleBinding",
    "metadata": {"name": "alice-edits", "namespace": "team"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "milkyway-editor"},
    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}],
}


def _alice_kubeconfig(admin: Path, token: str, path: Path) -> Path:
    config: dict[str, Any] = yaml.safe_load(admin.read_text())
    (mgmt,) = [c for c in config["contexts"] if c["name"] == "mgmt"]
    config["users"].append({"name": "alice", "user": {"token": token}})
    config["contexts"] = [
        {"name": "alice", "context": {"cluster": mgmt["context"]["cluster"], "user": "alice"}}
    ]
    config["current-context"] = "alice"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_apply_with_namespace_rights_only(tmp_path: Path) -> None:
    async with SimulatedClusters(
        ["mgmt"], kubeconfig_path=tmp_path / "kubeconfig", rbac=True
    ) as sim:
        admin = client_from_kubeconfig(sim.kubeconfig_path, "mgmt")
        try:
            for crd in all_crds():
                await admin.create(codecs.from_dict(crd))
            await admin.create(Namespace(metadata=ObjectMeta(name="team")))
            for obj in (EDITOR_ROLE, BINDING):
                await admin.create(codecs.from_dict(obj))
            alice = _alice_kubeconfig(
                sim.kubeconfig_path, sim.add_user("alice"), tmp_path / "alice"
            )
            document = yaml.safe_load(EXAMPLE.read_text())
            document["metadata"]["namespace"] = "team"
            manifest = tmp_path / "stream1.yaml"
            manifest.write_text(yaml.safe_dump(document))
            result = await asyncio.to_thread(
                CliRunner().invoke,
                app,
                ["apply", "-f", str(manifest), f"--kubeconfig={alice}"],
                env={"COLUMNS": "200"},
            )
            output = " ".join(result.output.split())
            assert result.exit_code == 0, result.output
            assert "built-in types" in output, output
            stored = await admin.get(APPLICATION, "stream1", namespace="team")
            assert stored.metadata.name == "stream1"
        finally:
            await admin.close()

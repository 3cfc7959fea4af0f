"""An Application created through the REST API is provisioned across the member clusters
exactly as one applied with kubectl: same objects in every cluster, both Ready."""

from __future__ import annotations

import asyncio
import base64
import shutil
from pathlib import Path

import httpx
import yaml
from lightkube import codecs

from milkyway.server.app import build_state, create_app
from milkyway.server.settings import ServerSettings

from .conftest import MANAGEMENT, World, example

TOKEN = "e2e-static-token-of-ops"


async def test_created_through_the_api_like_kubectl_apply(world: World, tmp_path: Path) -> None:
    for namespace in ("via-api", "via-kubectl"):
        await world.client.create(
            codecs.from_dict(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
        )
    await world.client.create(
        codecs.from_dict(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "tokens", "namespace": "milkyway-system"},
                "data": {"tokens.csv": base64.b64encode(f"{TOKEN},ops,ops".encode()).decode()},
            }
        )
    )
    settings = ServerSettings(
        kubeconfig=world.kubeconfig,
        context=MANAGEMENT,
        audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
        static_tokens_secret="milkyway-system/tokens",
    )
    state = build_state(settings)
    app = create_app(settings, state)
    manifest = yaml.safe_load(example("../tests/e2e/small.yaml"))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://server",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=60,
        ) as api:
            manifest["metadata"]["namespace"] = "via-api"
            created = await api.post("/api/v1/namespaces/via-api/applications", json=manifest)
            assert created.status_code == 201, created.text
        manifest["metadata"]["namespace"] = "via-kubectl"
        path = tmp_path / "small.yaml"
        path.write_text(yaml.safe_dump(manifest))
        kubectl = shutil.which("kubectl")
        assert kubectl, "kubectl is not on PATH: install kubectl 1.32 (Debian: kubernetes-client)"
        proc = await asyncio.create_subprocess_exec(
            kubectl,
            f"--kubeconfig={world.kubeconfig}",
            f"--context={MANAGEMENT}",
            f"--cache-dir={tmp_path / 'kube-cache'}",
            "apply",
            "-f",
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
        await world.wait_ready("via-api", "small", within=180)
        await world.wait_ready("via-kubectl", "small", within=180)
        for member in world.members:
            via_api = sorted(await world.owned(member.name, "via-api", "small"))
            via_kubectl = sorted(await world.owned(member.name, "via-kubectl", "small"))
            assert via_api and via_api == via_kubectl, member.name
    finally:
        await state.clients.close()
        state.audit.close()

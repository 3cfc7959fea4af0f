"""``ApiServer.access_hook`` sees every resource request with the user and the RBAC
attributes it is authorized by, denied ones included (the least-privilege test of the
install relies on it)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from milkyway.sim.apiserver.server import AccessRecord
from milkyway.sim.clusters import SimulatedClusters


async def test_requests_are_recorded_with_user_verb_and_resource(tmp_path: Path) -> None:
    async with SimulatedClusters(["c1"], kubeconfig_path=tmp_path / "kc", rbac=True) as sim:
        seen: list[AccessRecord] = []
        sim["c1"].server.access_hook = seen.append
        assert sim.certificate is not None
        context = ssl.create_default_context(cadata=sim.certificate.ca_pem.decode())
        async with httpx.AsyncClient(
            base_url=sim["c1"].url,
            headers={"Authorization": f"Bearer {sim.admin_token}"},
            verify=context,
            timeout=30,
        ) as admin:
            listed = await admin.get("/api/v1/namespaces/default/configmaps")
            assert listed.status_code == 200
            watched = await admin.get("/apis/apps/v1/statefulsets", params={"watch": "0"})
            assert watched.status_code == 200
            status = await admin.get("/api/v1/namespaces/default/pods/nope/status")
            assert status.status_code == 404
        assert [
            (r.verb, r.group, r.resource, r.subresource, r.namespace, r.name) for r in seen
        ] == [
            ("list", "", "configmaps", "", "default", ""),
            ("list", "apps", "statefulsets", "", "", ""),
            ("get", "", "pods", "status", "default", "nope"),
        ]
        assert {r.user for r in seen} == {seen[0].user} and seen[0].user

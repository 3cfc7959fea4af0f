"""The built-in generic tasks against a simulated member cluster."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from lightkube import AsyncClient, KubeConfig
from lightkube.resources.core_v1 import ConfigMap

from milkyway.flows import builtin
from milkyway.flows.dsl import Catalog, library_flows, load_flows
from milkyway.flows.engine import Engine

FLOW = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: builtins}
spec:
  parameters:
    url: {type: string}
  steps:
    - name: deploy
      flow: apply-and-wait
      params:
        cluster: c2
        namespace: default
        manifests:
          - apiVersion: v1
            kind: ConfigMap
            metadata: {name: app-config}
            data: {mode: safe}
        waitFor:
          apiVersion: v1
          kind: ConfigMap
          name: app-config
          condition: object.data.mode == 'safe'
        timeout: 10
    - name: call
      action: http
      params: {url: "${{ params.url }}", method: POST, json: {step: call}}
    - name: remove
      action: k8s.delete
      params: {cluster: c2, apiVersion: v1, kind: ConfigMap, name: app-config, namespace: default}
    - name: remove-again
      action: k8s.delete
      params: {cluster: c2, apiVersion: v1, kind: ConfigMap, name: app-config, namespace: default}
    - name: tell
      action: notify
      params: {channel: ops, message: "done ${{ steps.call.outputs.body.seen }}"}
"""


async def test_apply_wait_http_delete_notify(flow_cluster: Any, unused_tcp_port: int) -> None:
    seen: list[tuple[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.headers["Idempotency-Key"], await request.json()))
        return web.json_response({"seen": len(seen)})

    server = web.Application()
    server.router.add_post("/hook", handler)
    runner = web.AppRunner(server)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    notes: list[tuple[str, str]] = []
    builtin.NOTIFY_HOOKS.append(lambda channel, message, fields: notes.append((channel, message)))
    member = AsyncClient(KubeConfig.from_file(flow_cluster.sim.kubeconfig_path).get("c2"))
    try:
        catalog = Catalog([*library_flows(), *load_flows(FLOW)])
        engine = Engine(
            flow_cluster.store,
            catalog,
            clients={"c1": flow_cluster.client, "c2": member},
            poll_interval=0.1,
        )
        async with engine:
            name = await engine.submit(
                "builtins", {"url": f"http://127.0.0.1:{unused_tcp_port}/hook"}
            )
            run = await engine.wait(name, 60)
        assert run.status.phase == "Succeeded", {
            p: n.message for p, n in run.status.nodes.items() if n.phase == "Failed"
        }
        assert run.status.nodes["deploy/apply"].outputs == {"applied": ["ConfigMap/app-config"]}
        assert run.status.nodes["remove"].outputs == {"deleted": True}
        assert run.status.nodes["remove-again"].outputs == {"deleted": False}
        assert seen == [(f"{name}/call", {"step": "call"})]
        assert notes == [("ops", "done 1")]
        names = [cm.metadata.name async for cm in member.list(ConfigMap, namespace="default")]
        assert "app-config" not in names
    finally:
        builtin.NOTIFY_HOOKS.clear()
        await member.close()
        await runner.cleanup()

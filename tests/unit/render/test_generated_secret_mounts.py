"""A type's generated Secrets are mounted, read-only, in the data system's and the agent's
containers of every member; the Secret is named after the application, component and
declared secret, and the ConfigMap carries the declaration the agent reads."""

from __future__ import annotations

import json
from typing import Any

import yaml

from milkyway.components import registry_from_resources
from milkyway.model import load_resolved
from milkyway.render import render_zone

from .conftest import TYPES, application, policy_violations, strict_errors

AUTH = {
    "name": "auth",
    "path": "/etc/zk-auth",
    "reloadAction": "reload-auth",
    "generate": {"length": 40, "alphabet": "hex"},
}


def _registry() -> Any:
    data = TYPES["zookeeper"].model_dump(mode="json", by_alias=True, exclude_none=True)
    agent = data["spec"].setdefault("agent", {})
    agent.setdefault("actions", []).append({"name": "reload-auth", "command": ["true"]})
    agent["secrets"] = [AUTH, {"name": "tls", "path": "/etc/tls", "reloadAction": "reload-auth"}]
    return registry_from_resources([data])


def test_generated_secret_is_mounted_in_main_and_agent_containers() -> None:
    app = load_resolved(yaml.safe_dump(application("zookeeper")), _registry())
    manifests = render_zone(app, "zookeeper1", "phx")
    workload = next(m for m in manifests if m["kind"] == "StatefulSet")
    spec = workload["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "secret-auth")
    assert volume["secret"] == {"secretName": "app-zookeeper1-auth", "defaultMode": 0o440}
    assert not any(v["name"] == "secret-tls" for v in spec["volumes"]), (
        "a Secret without generate is not Milkyway's to mount"
    )
    for container in spec["containers"]:
        mounts = [m for m in container["volumeMounts"] if m["name"] == "secret-auth"]
        assert mounts == [{"name": "secret-auth", "mountPath": "/etc/zk-auth", "readOnly": True}]
    config = next(m for m in manifests if m["kind"] == "ConfigMap")
    declared = json.loads(config["data"]["agent.json"])["secrets"][0]
    assert declared["generate"] == {"length": 40, "alphabet": "hex"}
    for manifest in manifests:
        assert strict_errors(manifest) is None
        assert policy_violations(manifest, app.components["zookeeper1"].type) == []

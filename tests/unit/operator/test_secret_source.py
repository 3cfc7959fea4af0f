"""Every zone's ConfigMap names the cluster of the component's first zone as the source of
truth of its generated Secrets, so applying any zone creates them there first."""

from __future__ import annotations

import yaml
from tests.unit.render.conftest import application
from tests.unit.render.test_generated_secret_mounts import _registry

from milkyway.components import builtin_component_types
from milkyway.kube.generated_secrets import SECRET_SOURCE
from milkyway.model import load_resolved
from milkyway.operator.planner.desired import zone_want
from milkyway.render import render_zone

CLUSTERS = {"phx": {"metadata": {"name": "na-phx"}}, "slc": {"metadata": {"name": "na-slc"}}}


def _source(registry: object) -> dict[str, str | None]:
    data = application("zookeeper", zones=[("phx", 2), ("slc", 1)])
    app = load_resolved(yaml.safe_dump(data), registry)
    component = app.components["zookeeper1"]
    found: dict[str, str | None] = {}
    for zone in ("phx", "slc"):
        want = zone_want(app, component, zone, render_zone(app, "zookeeper1", zone), CLUSTERS)
        config = next(m for m in want.manifests if m["kind"] == "ConfigMap")
        found[zone] = (config["metadata"].get("annotations") or {}).get(SECRET_SOURCE)
    return found


def test_every_zone_names_the_first_zones_cluster() -> None:
    assert _source(_registry()) == {"phx": "na-phx", "slc": "na-phx"}


def test_types_without_generated_secrets_get_no_source() -> None:
    assert _source(builtin_component_types()) == {"phx": None, "slc": None}

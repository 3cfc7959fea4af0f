"""An Application whose spec is past the operator's size bound is refused with an
InvalidSpec condition and Event, by an operator started after it was stored, and the
operator goes on serving the other Applications."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from lightkube.resources.core_v1 import Event

from milkyway.operator.size_limit import MAX_SPEC_BYTES

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def stream1(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((EXAMPLES / "stream1.yaml").read_text())
    loaded["metadata"]["name"] = name
    return dict(loaded)


def ready(app: dict[str, Any]) -> dict[str, Any]:
    for item in (app.get("status") or {}).get("conditions") or []:
        if item["type"] == "Ready":
            return dict(item)
    return {}


async def test_a_fresh_operator_refuses_an_oversized_spec_and_serves_the_rest(
    world: Any,
) -> None:
    big = stream1("big")
    big["spec"]["components"][0]["params"] = {"blob": "x" * (MAX_SPEC_BYTES + 1024)}
    await world.apply_application(big)
    small = stream1("small")
    small["spec"]["components"][1]["version"] = "0.0.1"
    await world.apply_application(small)

    async with world.operator() as operator:
        await operator.wait_until_leading(10)

        async def refused(name: str) -> dict[str, Any]:
            app = await world.application("milkyway", name)
            return app if ready(app).get("reason") == "InvalidSpec" else {}

        app = await world.eventually(lambda: refused("big"), within=60, what="big refused")
        message = ready(app)["message"]
        assert f"at most {MAX_SPEC_BYTES} bytes" in message
        assert len(message) < 2000
        other = await world.eventually(lambda: refused("small"), within=60, what="small refused")
        assert "spec.components[1].version" in ready(other)["message"]
        reasons = [
            (e.involvedObject.name, e.reason)
            async for e in world.mgmt.list(Event, namespace="milkyway")
        ]
        assert ("big", "InvalidSpec") in reasons

"""The runs a change causes name the server request that made it: the operator copies the
request id to the FlowRun only while the server's stamp covers it, so an id written or
edited with kubectl links no run to anyone's request."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from milkyway.kube.decision_key import decision_key
from milkyway.kube.labels import APPLICATION as APP_LABEL
from milkyway.kube.resources import FLOWRUN
from milkyway.security.change_stamp import REQUEST_ID, stamp

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
NAMESPACE = "etcd-demo"


def _stamped(doc: dict[str, Any], key: bytes, name: str, request_id: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["metadata"]["name"] = name
    annotations = {REQUEST_ID: request_id}
    annotations.update(stamp(key, "bob", NAMESPACE, name, doc["spec"], annotations))
    doc["metadata"]["annotations"] = annotations
    return doc


async def test_runs_carry_the_request_id_the_stamp_covers(world: Any) -> None:
    key = await decision_key(world.mgmt)
    base = yaml.safe_load((EXAMPLES / "etcd.yaml").read_text())
    through_server = _stamped(base, key, "store-a", "req-aaaaaaaa-1111")
    edited = _stamped(base, key, "store-b", "req-bbbbbbbb-2222")
    edited["metadata"]["annotations"][REQUEST_ID] = "req-forged-by-kubectl"
    plain = copy.deepcopy(base)
    plain["metadata"]["name"] = "store-c"
    plain["metadata"]["annotations"] = {REQUEST_ID: "req-cccccccc-3333"}
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        for doc in (through_server, edited, plain):
            await world.apply_application(doc)

        async def runs() -> dict[str, dict[str, Any]] | None:
            found: dict[str, dict[str, Any]] = {}
            async for run in world.mgmt.list(FLOWRUN, namespace=NAMESPACE):
                data = run.to_dict()
                found.setdefault(data["metadata"]["labels"].get(APP_LABEL, ""), data)
            return found if {"store-a", "store-b", "store-c"} <= set(found) else None

        await world.eventually(runs, within=60, what="a provision run of each Application")
        found = await runs()
        assert found is not None
    annotations = {app: run["metadata"].get("annotations") or {} for app, run in found.items()}
    assert annotations["store-a"].get(REQUEST_ID) == "req-aaaaaaaa-1111"
    assert found["store-a"]["spec"]["requestedBy"] == "bob"
    assert REQUEST_ID not in annotations["store-b"]
    assert REQUEST_ID not in annotations["store-c"]

"""Per-object cost of the simulator's patch and server-side apply paths.

Every create, update and patch with a field manager also runs ``record_update`` (the
managedFields bookkeeping), so its cost is part of the >= 1,000 creates/s budget. Prints
operations/s for each path and, as the baseline measured in the same run, the cost of one
``copy.deepcopy`` of the same object (the least any write pays to keep its input intact).

Run: ``.venv/bin/python bench/sim_patching.py [--seconds 1.0]``
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from typing import Any

from milkyway.sim.apiserver.apply import record_update, server_side_apply
from milkyway.sim.apiserver.patching import json_patch, merge_patch, strategic_merge_patch
from milkyway.sim.apiserver.schemas import BuiltinSchemas

NOW = "2026-01-01T00:00:00Z"

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "fe"}},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": name,
                        "image": f"{name}:1",
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 8080 + i, "protocol": "TCP"}],
                        "env": [{"name": f"E{j}", "value": str(j)} for j in range(5)],
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                        "volumeMounts": [{"name": "data", "mountPath": f"/data/{name}"}],
                    }
                    for i, name in enumerate(["app", "sidecar"])
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
            },
        },
    },
}


def rate(fn: Callable[[], object], seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(20):
            fn()
        count += 20
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()

    schemas = BuiltinSchemas.for_version()
    schema = schemas.definition_for(("apps", "v1", "Deployment"))
    live = record_update(None, DEPLOYMENT, manager="kubectl-create", operation="Update", now=NOW)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    applied = server_side_apply(
        None, DEPLOYMENT, manager="kubectl", force=False, schema=schema, schemas=schemas, now=NOW
    )
    new_image = copy.deepcopy(DEPLOYMENT)
    new_image["spec"]["template"]["spec"]["containers"][0]["image"] = "app:2"

    def apply(obj: dict[str, Any] | None, config: dict[str, Any]) -> Callable[[], object]:
        return lambda: server_side_apply(
            obj, config, manager="kubectl", force=True, schema=schema, schemas=schemas, now=NOW
        )

    cases: list[tuple[str, Callable[[], object]]] = [
        ("baseline: copy.deepcopy", lambda: copy.deepcopy(live)),
        ("merge patch (labels)", lambda: merge_patch(live, {"metadata": {"labels": {"x": "y"}}})),
        (
            "JSON patch (test + replace)",
            lambda: json_patch(
                live,
                [
                    {"op": "test", "path": "/spec/replicas", "value": 3},
                    {"op": "replace", "path": "/spec/replicas", "value": 4},
                ],
            ),
        ),
        (
            "strategic merge patch (one container image)",
            lambda: strategic_merge_patch(
                live,
                {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:2"}]}}}},
                schema,
                schemas,
            ),
        ),
        (
            "record_update on create",
            lambda: record_update(None, DEPLOYMENT, manager="m", operation="Update", now=NOW),
        ),
        (
            "record_update on update (replicas)",
            lambda: record_update(live, scaled, manager="m", operation="Update", now=NOW),
        ),
        ("server-side apply, create", apply(None, DEPLOYMENT)),
        ("server-side apply, unchanged re-apply", apply(applied, DEPLOYMENT)),
        ("server-side apply, new image", apply(applied, new_image)),
    ]
    baseline = 0.0
    print(f"{'path':45} {'ops/s':>10} {'x deepcopy':>11}")
    for name, fn in cases:
        ops = rate(fn, args.seconds)
        baseline = baseline or ops
        print(f"{name:45} {ops:10,.0f} {baseline / ops:10.1f}x")


if __name__ == "__main__":
    main()

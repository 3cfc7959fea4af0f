"""Per-object cost of the simulator's validation, printing, OpenAPI and RBAC paths.

Creates must sustain >= 1,000 objects/s through the whole API server, so validation has
to stay well under a millisecond per object. Prints objects/s for each path and, as the
baseline measured in the same run, the cost of building a fresh ``jsonschema`` validator
per object (what caching the compiled validator per kind saves).

Run: ``.venv/bin/python bench/sim_validation.py [--seconds 1.0]``
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jsonschema
import orjson

from milkyway.sim.apiserver.duplicate_keys import duplicate_fields
from milkyway.sim.apiserver.openapi import OpenAPIPublisher, ServedResource
from milkyway.sim.apiserver.printing import to_table
from milkyway.sim.apiserver.rbac import RequestAttributes, authorize
from milkyway.sim.apiserver.schemas import BuiltinSchemas
from milkyway.sim.apiserver.validation import StructuralSchema, validate_builtin

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web", "tier": "fe"}},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "nginx:1.27",
                "ports": [{"containerPort": 80, "name": "http"}],
                "env": [{"name": "MODE", "value": "prod"}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }
        ],
        "volumes": [{"name": "data", "emptyDir": {}}],
    },
}

STATEFULSET: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "zk", "namespace": "default"},
    "spec": {
        "serviceName": "zk",
        "replicas": 3,
        "selector": {"matchLabels": {"app": "zk"}},
        "template": {"metadata": {"labels": {"app": "zk"}}, "spec": POD["spec"]},
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        ],
    },
}

CR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "x-kubernetes-validations": [{"rule": "self.size <= 9", "message": "at most nine"}],
            "properties": {
                "size": {"type": "integer", "minimum": 1},
                "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
                "members": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["zone"],
                    "items": {
                        "type": "object",
                        "required": ["zone"],
                        "properties": {
                            "zone": {"type": "string"},
                            "weight": {"type": "integer", "default": 1},
                        },
                    },
                },
            },
        }
    },
}


def rate(label: str, work: Callable[[], Any], seconds: float) -> float:
    """Calls per second of ``work`` over about ``seconds``; prints and returns it."""
    work()
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        work()
        count += 1
    per_second = count / (time.perf_counter() - started)
    print(f"  {label:<52} {per_second:>12,.0f} /s  {1e6 / per_second:>9.1f} µs")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    seconds = parser.parse_args().seconds
    schemas = BuiltinSchemas.for_version("1.32")

    print("built-in validation (schema + semantic rules, strict)")
    pod_rate = rate(
        "validate_builtin(Pod), cached validator", lambda: validate_builtin(POD, schemas), seconds
    )
    sts_rate = rate(
        "validate_builtin(StatefulSet), cached validator",
        lambda: validate_builtin(STATEFULSET, schemas),
        seconds,
    )
    root = {
        "$defs": schemas.definitions,
        "$ref": f"#/$defs/{schemas.definition_name(('', 'v1', 'Pod'))}",
    }
    baseline = rate(
        "baseline: new jsonschema validator per Pod",
        lambda: list(jsonschema.Draft202012Validator(copy.deepcopy(root)).iter_errors(POD)),
        seconds,
    )
    print(f"  cached Pod validation is {pod_rate / baseline:,.1f}x the baseline")
    print(f"  Pod budget used at 1,000 creates/s: {1000 / pod_rate:.1%} of a core")
    print(f"  StatefulSet budget used at 1,000 creates/s: {1000 / sts_rate:.1%} of a core")

    print("duplicate JSON keys in request bodies")
    body = orjson.dumps(STATEFULSET)
    parse_rate = rate(
        "baseline: orjson.loads(StatefulSet body)", lambda: orjson.loads(body), seconds
    )
    check_rate = rate(
        "orjson.loads + duplicate_fields (no duplicates)",
        lambda: duplicate_fields(body, orjson.loads(body)),
        seconds,
    )
    duplicated = body.replace(b'"replicas":3', b'"replicas":3,"replicas":3')
    rate(
        "orjson.loads + duplicate_fields (a duplicate: exact parse)",
        lambda: duplicate_fields(duplicated, orjson.loads(duplicated)),
        seconds,
    )
    print(f"  the check costs {1e6 / check_rate - 1e6 / parse_rate:,.1f} us per clean body")

    print("custom resources (StructuralSchema)")
    structural = StructuralSchema(CR_SCHEMA)
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default"},
        "spec": {"size": 3, "members": [{"zone": "a"}, {"zone": "b"}], "junk": 1},
    }

    def custom_write() -> None:
        pruned, _ = structural.prune(widget)
        structural.validate(structural.default(pruned))

    rate("prune + default + validate", custom_write, seconds)
    without_rules = copy.deepcopy(CR_SCHEMA)
    del without_rules["properties"]["spec"]["x-kubernetes-validations"]
    plain = StructuralSchema(without_rules)

    def plain_write() -> None:
        pruned, _ = plain.prune(widget)
        plain.validate(plain.default(pruned))

    rate("prune + default + validate, no CEL rule", plain_write, seconds)

    print("server-side printing")
    now = datetime.now(UTC)
    pods = []
    for i in range(1000):
        pod = copy.deepcopy(POD)
        pod["metadata"]["name"] = f"web-{i}"
        pod["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        pods.append(pod)
    table_rate = rate(
        "to_table(1,000 pods)",
        lambda: to_table(pods, group="", kind="Pod", printer_columns=None, now=now),
        seconds,
    )
    print(f"  = {table_rate * 1000:,.0f} pod rows/s")

    print("OpenAPI")
    served = [
        ServedResource("", "v1", "Pod", "pods", True, subresources=("status",)),
        ServedResource("apps", "v1", "StatefulSet", "statefulsets", True, subresources=("scale",)),
        ServedResource("example.com", "v1", "Widget", "widgets", True, schema=CR_SCHEMA),
    ]
    rate(
        "cold v3 index (all documents rebuilt)",
        lambda: OpenAPIPublisher(schemas, lambda: served).v3_index(),
        seconds,
    )
    warm = OpenAPIPublisher(schemas, lambda: served)
    rate("warm v3 index (cached, served set re-checked)", warm.v3_index, seconds)

    print("RBAC")
    bindings = [
        {
            "metadata": {"name": f"b{i}", "namespace": "team"},
            "roleRef": {"kind": "Role", "name": f"r{i}"},
            "subjects": [{"kind": "User", "name": f"user-{i}"}],
        }
        for i in range(200)
    ]
    roles = [
        {
            "metadata": {"name": f"r{i}", "namespace": "team"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        }
        for i in range(200)
    ]
    attrs = RequestAttributes(
        user="user-199", verb="get", resource="pods", name="p", namespace="team"
    )
    rate(
        "authorize, 200 roles + role bindings (last one matches)",
        lambda: authorize(
            attrs, roles=roles, cluster_roles=[], role_bindings=bindings, cluster_role_bindings=[]
        ),
        seconds,
    )


if __name__ == "__main__":
    main()

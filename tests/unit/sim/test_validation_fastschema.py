"""The compiled quick check agrees with jsonschema on the built-in definitions."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.sim.apiserver.fastschema import SchemaCompiler
from milkyway.sim.apiserver.schemas import BuiltinSchemas
from milkyway.sim.apiserver.validation import _validator, validate_builtin

SCHEMAS = BuiltinSchemas.for_version("1.32")

SAMPLES: dict[tuple[str, str, str], dict[str, Any]] = {
    ("", "v1", "Pod"): {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "labels": {"a": "b"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u"}],
        },
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "i",
                    "ports": [{"containerPort": 80}],
                    "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                }
            ],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}],
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    },
    ("apps", "v1", "Deployment"): {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"a": "b"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    },
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"): {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "ws.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "ws", "kind": "W"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"a": {"type": "array", "items": {"type": "string"}}},
                        }
                    },
                }
            ],
        },
    },
}

json_scalars = (
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-2, 2) | st.text(max_size=3)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.dictionaries(
            st.sampled_from(["name", "image", "x", "type", "items"]), inner, max_size=2
        )
    ),
    max_leaves=6,
)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(paths(value, (*prefix, index)))
    return found


@settings(max_examples=300, deadline=None)
@given(
    gvk=st.sampled_from(sorted(SAMPLES)),
    strict=st.booleans(),
    data=st.data(),
)
def test_quick_check_matches_jsonschema(gvk: tuple[str, str, str], strict: bool, data: Any) -> None:
    obj = copy.deepcopy(SAMPLES[gvk])
    compiled = _validator(SCHEMAS, gvk, strict)
    assert compiled is not None
    quick, validator = compiled
    assert quick(obj) and not list(validator.iter_errors(obj))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(obj)[1:]))
        parent = obj
        for part in path[:-1]:
            parent = parent[part]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["extra", path[-1]]))] = data.draw(json_values)
        elif isinstance(parent, dict) and data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values)
    assert quick(obj) == (not list(validator.iter_errors(obj)))
    before = copy.deepcopy(obj)
    causes = validate_builtin(obj, SCHEMAS, strict=strict)
    assert obj == before
    if not quick(obj):
        assert causes, "an object failing the schema must get causes"


def test_recursive_definitions_compile_and_unknown_keywords_defer() -> None:
    compiler = SchemaCompiler(
        {
            "Tree": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}},
                "additionalProperties": False,
            },
            "Odd": {"type": "string", "pattern": "^a"},
        }
    )
    tree = compiler.for_definition("Tree")
    assert tree({"children": [{"children": []}, {}]})
    assert not tree({"children": [{"leaf": 1}]})
    assert not compiler.for_definition("Odd")("abc"), "an unhandled keyword must defer"

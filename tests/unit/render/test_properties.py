"""Property-based tests over generated and mutated Applications: either a validation error
with a field path, or manifests that validate — never another exception; rendering is
deterministic; member identities never collide and never change for unchanged members."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milkyway.model import ResolvedApplication, ValidationFailed, load_resolved
from milkyway.render import render_application

from .conftest import TYPES, strict_errors

ZONES = ["phx", "slc", "lvs", "ams"]
STREAM1: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[3] / "examples" / "stream1.yaml").read_text()
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=300),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=12),
    st.sampled_from(["3.10", "NO", "phx", "default", "zookeeper1", "Kafka", "-x", "1Gi"]),
)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _sometimes_wrong(draw: st.DrawFn, good: st.SearchStrategy[Any], bad: Any) -> Any:
    """Mostly a valid choice, now and then an invalid one (one in ten)."""
    return draw(good) if draw(st.integers(min_value=0, max_value=9)) != 9 else bad


@st.composite
def components(draw: st.DrawFn, index: int, type_name: str) -> dict[str, Any]:
    spec = TYPES[type_name].spec
    explicit = draw(st.booleans())
    component: dict[str, Any] = {
        "name": f"c{index}" if explicit else f"{type_name}{index}",
        "version": _sometimes_wrong(
            draw, st.sampled_from([v.version for v in spec.versions]), "0.0.1"
        ),
        "regions": [],
    }
    if explicit:
        component["type"] = type_name
    workload = _sometimes_wrong(draw, st.sampled_from([*spec.workloads, None]), "deployment")
    if workload is not None:
        component["workload"] = workload
    if draw(st.booleans()):
        component["config"] = _sometimes_wrong(draw, st.sampled_from(sorted(spec.profiles)), "x")
    if spec.params and draw(st.booleans()):
        param = draw(st.sampled_from(spec.params))
        value = _sometimes_wrong(draw, st.just(param.default), draw(scalars))
        component["params"] = {param.name: value}
    zones = draw(st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True))
    limit = min(5, spec.sizing.max)
    sizes = [draw(st.integers(min_value=0, max_value=limit)) for _ in zones]
    if sum(sizes) > spec.sizing.max or sum(sizes) == 0:
        sizes = [1] + [0] * (len(sizes) - 1)
    if spec.sizing.odd and sum(sizes) % 2 == 0:
        sizes[0] += _sometimes_wrong(draw, st.just(1), 0)
    regions: dict[str, list[dict[str, Any]]] = {}
    for zone, size in zip(zones, sizes, strict=True):
        entry: dict[str, Any] = {"name": zone, "size": size}
        if workload == "pods":
            entry["nodes"] = [f"{zone}-node{i}" for i in range(size)]
        regions.setdefault("EU" if zone == "ams" else "NA", []).append(entry)
    component["regions"] = [{"name": r, "zones": z} for r, z in sorted(regions.items())]
    return component


@st.composite
def applications(draw: st.DrawFn) -> dict[str, Any]:
    """Applications whose components mostly have what they need before them."""
    wanted = draw(st.lists(st.sampled_from(sorted(TYPES)), min_size=1, max_size=3))
    types: list[str] = []
    for name in wanted:
        for dependency in TYPES[name].spec.dependencies:
            if (
                dependency.required
                and dependency.type not in types
                and draw(st.integers(min_value=0, max_value=9))
            ):
                types.append(dependency.type)
        types.append(name)
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "Application",
        "metadata": {"name": draw(st.sampled_from(["stream1", "app", "x"])), "namespace": "ns"},
        "spec": {"components": [draw(components(i, name)) for i, name in enumerate(types)]},
    }


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_paths(value, (*prefix, i)))
    return found


@st.composite
def mutated_stream1(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(STREAM1)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["set", "delete", "add"]))
        if action == "set":
            parent[path[-1]] = draw(junk)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(junk)
        else:
            parent.append(draw(junk))
    return data


def _check(data: dict[str, Any]) -> ResolvedApplication | None:
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        resolved = load_resolved(text, TYPES)
    except ValidationFailed as exc:
        assert exc.errors
        for error in exc.errors:
            assert error.path or error.message.startswith(("not valid YAML", "an Application"))
            assert error.message and error.fix
        return None
    first = render_application(resolved)
    second = render_application(load_resolved(text, TYPES))
    assert first == second, "rendering is not deterministic"
    for manifests in first.values():
        for manifest in manifests:
            assert strict_errors(manifest) is None, strict_errors(manifest)
    _check_identities(resolved)
    return resolved


def _check_identities(resolved: ResolvedApplication) -> None:
    for name, component in resolved.components.items():
        ids = [i for zone in component.zones for i in zone.member_ids]
        assert len(ids) == len(set(ids)), f"{name}: identities collide"
        assert [len(z.member_ids) for z in component.zones] == [z.size for z in component.zones]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(applications())
def test_generated_applications_validate_or_render_valid_manifests(data: dict[str, Any]) -> None:
    _check(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_stream1())
def test_mutated_talk_application_never_raises_anything_else(data: dict[str, Any]) -> None:
    _check(data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(applications(), st.data())
def test_resizing_keeps_identities_of_unchanged_members(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    try:
        before = load_resolved(yaml.safe_dump(data), TYPES)
    except ValidationFailed:
        return
    resized = copy.deepcopy(data)
    resized["status"] = {"members": {k: v.to_wire() for k, v in before.members.items()}}
    for component in resized["spec"]["components"]:
        for region in component["regions"]:
            for zone in region["zones"]:
                zone["size"] = draw.draw(st.integers(min_value=0, max_value=5))
                zone["nodes"] = [f"{zone['name']}-node{i}" for i in range(zone["size"])]
    try:
        after = load_resolved(yaml.safe_dump(resized), TYPES)
    except ValidationFailed:
        return
    for name, component in after.components.items():
        old = before.components[name]
        for zone in component.zones:
            previous = old.zone(zone.name).member_ids
            kept = min(len(previous), zone.size)
            assert zone.member_ids[:kept] == previous[:kept]
        all_ids = [i for z in component.zones for i in z.member_ids]
        assert len(all_ids) == len(set(all_ids))

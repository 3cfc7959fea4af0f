"""Which flow runs an operation, and the catalog the operator's engine runs flows from.

Three layers, most specific first:

1. an Application component's ``flows`` names the flow of an operation for that component;
2. a ComponentType's ``flows`` names the flow of an operation, or of a shared step
   (``member-health``, ``restart-member``, ``zone-apply``, ``roll-members``) for every
   component of the type;
3. Milkyway's lifecycle flows (``milkyway/operator/library/*.yaml``), built on the
   engine's common flows.

A shared-step override reaches every lifecycle flow that uses the step: the catalog
derives, per ComponentType, a copy of each lifecycle flow (and of the subflows between
it and the step) with the step replaced, named ``<flow>--<type>``. The planner picks the
names with :func:`flow_name`, a pure function, so the choice is testable without a
catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path

from milkyway.flows.dsl import Catalog, library_flows, load_flows
from milkyway.model.application import FLOW_OPERATIONS, STEP_OPERATIONS
from milkyway.model.base import ObjectMeta
from milkyway.model.component_type import ComponentType
from milkyway.model.flow import Flow, FlowSpec

PREFIX = "milkyway-"
DEFAULT_FLOWS: Mapping[str, str] = {op: PREFIX + op for op in FLOW_OPERATIONS + STEP_OPERATIONS}
"""Operation or shared step to the name of Milkyway's flow for it."""


def variant_name(flow: str, type_name: str) -> str:
    """Name of the copy of ``flow`` whose shared steps follow ComponentType ``type_name``."""
    return f"{flow}--{type_name}"


def step_overrides(type_flows: Mapping[str, str]) -> dict[str, str]:
    """The shared-step part of a ComponentType's ``flows``: default flow name to override."""
    return {DEFAULT_FLOWS[op]: name for op, name in type_flows.items() if op in STEP_OPERATIONS}


def flow_name(
    operation: str,
    type_name: str,
    type_flows: Mapping[str, str] | None = None,
    component_flows: Mapping[str, str] | None = None,
) -> str:
    """The flow that runs ``operation`` for a component of type ``type_name``."""
    if operation not in FLOW_OPERATIONS:
        raise KeyError(f"unknown operation {operation!r}; known: {', '.join(FLOW_OPERATIONS)}")
    if component_flows and operation in component_flows:
        return component_flows[operation]
    if type_flows and operation in type_flows:
        return type_flows[operation]
    if type_flows and step_overrides(type_flows):
        return variant_name(DEFAULT_FLOWS[operation], type_name)
    return DEFAULT_FLOWS[operation]


def operator_flows() -> list[Flow]:
    """Milkyway's lifecycle flows shipped in ``milkyway/operator/library``."""
    folder = resources.files("milkyway.operator") / "library"
    flows: list[Flow] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            flows.extend(load_flows(entry.read_text(), f"milkyway/operator/library/{entry.name}"))
    return flows


@cache
def builtin_flow_names() -> frozenset[str]:
    """Names of the Flows every installation has: Milkyway's lifecycle flows and the
    engine's common flows (read once: they ship with the package)."""
    return frozenset(flow.metadata.name for flow in [*operator_flows(), *library_flows()])


def _replace_subflows(spec: FlowSpec, names: Mapping[str, str]) -> FlowSpec:
    data = spec.model_dump(by_alias=True, exclude_none=True)
    for section in ("steps", "onFailure", "finally"):
        for step in data.get(section) or []:
            if step.get("flow") in names:
                step["flow"] = names[step["flow"]]
                step.pop("version", None)
    return FlowSpec.model_validate(data)


def type_variants(base: Catalog, component_type: ComponentType) -> list[Flow]:
    """Copies of the lifecycle flows with ``component_type``'s shared-step overrides."""
    overrides = step_overrides(component_type.spec.flows)
    if not overrides:
        return []
    type_name = component_type.name
    renamed: dict[str, str] = dict(overrides)
    to_copy: dict[str, FlowSpec] = {}
    changed = True
    while changed:
        changed = False
        for name in base.names():
            if name in renamed or not name.startswith(PREFIX):
                continue
            _, spec = base.get(name)
            if any(ref in renamed for ref, _ in spec.subflow_refs()):
                renamed[name] = variant_name(name, type_name)
                to_copy[name] = spec
                changed = True
    for op in FLOW_OPERATIONS:
        name = DEFAULT_FLOWS[op]
        if name not in renamed and name in base.names():
            renamed[name] = variant_name(name, type_name)
            to_copy[name] = base.get(name)[1]
    return [
        Flow(
            metadata=ObjectMeta(name=renamed[name]),
            spec=_replace_subflows(spec, renamed),
        )
        for name, spec in sorted(to_copy.items())
    ]


def build_catalog(
    component_types: Iterable[ComponentType] = (),
    flows: Iterable[Flow] = (),
    paths: Iterable[str | Path] = (),
) -> Catalog:
    """The operator's catalog: the engine's common flows, Milkyway's lifecycle flows,
    ``flows`` (the management cluster's Flow resources, which may replace any of them by
    name), flow files under ``paths``, and every ComponentType's derived variants."""
    catalog = Catalog([*library_flows(), *operator_flows(), *flows])
    for path in paths:
        files = sorted(Path(path).glob("*.y*ml")) if Path(path).is_dir() else [Path(path)]
        for file in files:
            for flow in load_flows(file.read_text(), str(file)):
                catalog.add(flow)
    for component_type in component_types:
        for variant in type_variants(catalog, component_type):
            catalog.add(variant)
    return catalog


__all__ = [
    "DEFAULT_FLOWS",
    "build_catalog",
    "flow_name",
    "operator_flows",
    "step_overrides",
    "type_variants",
    "variant_name",
]

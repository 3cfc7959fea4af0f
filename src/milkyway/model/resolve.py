"""Resolve an Application against ComponentTypes: types, versions, params, bindings, order.

The result, :class:`ResolvedApplication`, is everything rendering needs with nothing left
implicit: each component's type (inferred from its name unless written), its bindings
(inferred as the nearest preceding component of the needed type unless given in ``uses``),
the effective version, image, params, resources and storage per zone, the stable member
identities, and the dependency order provisioning follows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from milkyway.model.application import (
    Application,
    Component,
    MemberAssignment,
    Resources,
    Storage,
    WorkloadPattern,
    Zone,
)
from milkyway.model.component_type import ComponentType, ParamSpec
from milkyway.model.errors import FieldError, ValidationFailed, shown_value
from milkyway.model.identity import assign_identities
from milkyway.model.security_policy import DEFAULT_POLICY, SecurityPolicy, security_errors

_SUFFIX = re.compile(r"^[-0-9][-a-z0-9]*$")


@dataclass(frozen=True)
class ResolvedZone:
    """One zone of a component with every setting made explicit."""

    region: str
    name: str
    size: int
    cluster: str | None
    version: str
    image: str
    profile: str
    params: Mapping[str, Any]
    resources: Resources
    storage: Storage
    nodes: tuple[str, ...]
    member_ids: tuple[int, ...]
    """Identity of member ``i`` (ordinal ``i``) of this zone."""


@dataclass(frozen=True)
class ResolvedComponent:
    """One component: its type, deploy pattern, bindings and zones."""

    name: str
    index: int
    type: ComponentType
    workload: WorkloadPattern
    bindings: Mapping[str, str]
    """Dependency name (of the type) to the name of the component bound to it."""
    zones: tuple[ResolvedZone, ...]

    def zone(self, name: str) -> ResolvedZone:
        for zone in self.zones:
            if zone.name == name:
                return zone
        raise KeyError(f"component {self.name!r} has no zone {name!r}")

    @property
    def size(self) -> int:
        return sum(zone.size for zone in self.zones)


@dataclass(frozen=True)
class ResolvedApplication:
    """An Application with types and bindings resolved, in dependency order."""

    application: Application
    components: Mapping[str, ResolvedComponent]
    """Components keyed by name, iterated in dependency order (dependencies first)."""
    members: Mapping[str, MemberAssignment]
    """Member identities per component; the operator stores them in ``status.members``."""

    @property
    def name(self) -> str:
        return self.application.metadata.name

    @property
    def namespace(self) -> str:
        return self.application.metadata.namespace or "default"

    @property
    def order(self) -> tuple[str, ...]:
        """Component names in provisioning order."""
        return tuple(self.components)


def infer_type(name: str, type_names: Mapping[str, Any] | set[str] | list[str]) -> str | None:
    """The type a component name implies: the name itself, or the longest type name it
    starts with followed by digits or a dash (``zookeeper1``, ``kafka-east``)."""
    names = set(type_names)
    if name in names:
        return name
    candidates = [t for t in names if name.startswith(t) and _SUFFIX.match(name[len(t) :])]
    return max(candidates, key=len) if candidates else None


def resolve(
    app: Application,
    types: Mapping[str, ComponentType],
    previous: Mapping[str, MemberAssignment] | None = None,
    policy: SecurityPolicy = DEFAULT_POLICY,
) -> ResolvedApplication:
    """Resolve ``app`` against ``types`` (name to ComponentType); raise
    :class:`ValidationFailed` with every problem found.

    A type whose pod settings ``policy`` does not allow fails every component of it (see
    :mod:`milkyway.model.security_policy`).

    Member identities continue ``previous`` (component name to assignment), by default the
    ``status.members`` of ``app``; the result's ``members`` is what to store back."""
    previous = app.status.members if previous is None else previous
    errors: list[FieldError] = []
    typed: dict[str, ComponentType] = {}
    for i, component in enumerate(app.spec.components):
        component_type = _component_type(component, i, types, errors)
        if component_type is not None:
            typed[component.name] = component_type
            errors.extend(_check_component(component, i, component_type))
            errors.extend(
                FieldError(
                    f"spec.components[{i}].type",
                    component_type.name,
                    f"ComponentType {component_type.name} {e.path} = {shown_value(e.value)}: "
                    f"{e.message}",
                    e.fix,
                )
                for e in security_errors(component_type, policy)
            )
    bindings = {
        c.name: _bindings(app, i, typed, errors)
        for i, c in enumerate(app.spec.components)
        if c.name in typed
    }
    order = _dependency_order(app, bindings, errors)
    if errors:
        raise ValidationFailed(errors)
    members: dict[str, MemberAssignment] = {}
    resolved: dict[str, ResolvedComponent] = {}
    for name in order:
        i, component = next((i, c) for i, c in enumerate(app.spec.components) if c.name == name)
        component_type = typed[name]
        first = component_type.spec.identity.min if component_type.spec.identity else 1
        zones = [(z.name, z.size) for r in component.regions for z in r.zones]
        assignment = assign_identities(previous.get(name), zones, first)
        members[name] = assignment
        identity = component_type.spec.identity
        if identity is not None and assignment.next_id - 1 > identity.max:
            errors.append(
                FieldError(
                    f"spec.components[{i}].regions",
                    sum(size for _, size in zones),
                    f"{identity.param} would reach {assignment.next_id - 1}, over the "
                    f"maximum {identity.max} of {component_type.name}",
                    "use fewer members, or a new component for a new ensemble",
                )
            )
        resolved[name] = _resolved_component(
            component, i, component_type, bindings[name], assignment
        )
    if errors:
        raise ValidationFailed(errors)
    return ResolvedApplication(
        application=app,
        components=MappingProxyType(resolved),
        members=MappingProxyType(members),
    )


def _component_type(
    component: Component, i: int, types: Mapping[str, ComponentType], errors: list[FieldError]
) -> ComponentType | None:
    known = ", ".join(sorted(types))
    if component.type is not None:
        if component.type not in types:
            errors.append(
                FieldError(
                    f"spec.components[{i}].type",
                    component.type,
                    f"unknown component type {component.type!r}",
                    f"use one of: {known}; or install a ComponentType named {component.type!r}",
                )
            )
            return None
        return types[component.type]
    inferred = infer_type(component.name, types)
    if inferred is None:
        errors.append(
            FieldError(
                f"spec.components[{i}].name",
                component.name,
                "the component type cannot be inferred from the name",
                f"add `type:` (one of: {known}), or name it after its type, e.g. "
                f"'{sorted(types)[0] if types else 'zookeeper'}1'",
            )
        )
        return None
    return types[inferred]


def _check_component(component: Component, i: int, ctype: ComponentType) -> list[FieldError]:
    where = f"spec.components[{i}]"
    spec = ctype.spec
    errors: list[FieldError] = []
    versions = ", ".join(v.version for v in spec.versions)
    profiles = ", ".join(spec.profiles)

    def check_version(path: str, version: str, image: str | None) -> None:
        if spec.image_for(version) is None and image is None:
            errors.append(
                FieldError(
                    path,
                    version,
                    f"{ctype.name} has no version {version!r}",
                    f"use one of: {versions}; or set `image:` to run a custom image",
                )
            )

    def check_profile(path: str, profile: str) -> None:
        if profile not in spec.profiles:
            errors.append(
                FieldError(
                    path,
                    profile,
                    f"{ctype.name} has no config profile {profile!r}",
                    f"use one of: {profiles}",
                )
            )

    check_version(f"{where}.version", component.version, component.image)
    check_profile(f"{where}.config", component.config)
    errors.extend(_check_params(f"{where}.params", component.params, ctype))
    workload = component.workload or spec.workload
    if workload not in spec.workloads:
        errors.append(
            FieldError(
                f"{where}.workload",
                workload,
                f"{ctype.name} cannot run as a {workload}"
                + (" (its members need stable identities)" if spec.identity else ""),
                f"use one of: {', '.join(spec.workloads)}",
            )
        )
    deps = {d.name for d in spec.dependencies}
    for key in component.uses:
        if key not in deps:
            errors.append(
                FieldError(
                    f"{where}.uses.{key}",
                    key,
                    f"{ctype.name} has no dependency {key!r}",
                    f"bind one of: {', '.join(sorted(deps)) or 'nothing (it has none)'}",
                )
            )
    total = 0
    for r, region in enumerate(component.regions):
        for z, zone in enumerate(region.zones):
            path = f"{where}.regions[{r}].zones[{z}]"
            total += zone.size
            if zone.version is not None:
                check_version(f"{path}.version", zone.version, zone.image or component.image)
            if zone.config is not None:
                check_profile(f"{path}.config", zone.config)
            errors.extend(_check_params(f"{path}.params", zone.params, ctype))
            if workload == "pods" and len(zone.nodes) < zone.size:
                errors.append(
                    FieldError(
                        f"{path}.nodes",
                        list(zone.nodes),
                        f"the pods workload pins each member to a node with a local volume; "
                        f"{zone.size} members need {zone.size} nodes, {len(zone.nodes)} listed",
                        "list one node per member under `nodes:`",
                    )
                )
    errors.extend(_check_size(where, total, ctype))
    return errors


def _check_size(where: str, total: int, ctype: ComponentType) -> list[FieldError]:
    sizing = ctype.spec.sizing
    errors: list[FieldError] = []
    if total and sizing.odd and total % 2 == 0:
        tolerated = (total - 1) // 2
        errors.append(
            FieldError(
                f"{where}.regions",
                total,
                f"{ctype.name} needs a majority quorum: an ensemble of {total} tolerates "
                f"{tolerated} failure(s), like {total - 1}, so the extra member adds cost and "
                "no tolerance",
                f"use an odd size across all zones, e.g. {total - 1} or {total + 1}",
            )
        )
    if total and not sizing.min <= total <= sizing.max:
        errors.append(
            FieldError(
                f"{where}.regions",
                total,
                f"{ctype.name} supports {sizing.min} to {sizing.max} members in total",
                f"change the zone sizes so they add up to between {sizing.min} and {sizing.max}",
            )
        )
    return errors


def _check_params(path: str, params: Mapping[str, Any], ctype: ComponentType) -> list[FieldError]:
    errors: list[FieldError] = []
    known = ", ".join(p.name for p in ctype.spec.params)
    for name, value in params.items():
        spec = ctype.spec.param(name)
        if spec is None:
            errors.append(
                FieldError(
                    f"{path}.{name}",
                    value,
                    f"{ctype.name} has no param {name!r}",
                    f"use one of: {known}",
                )
            )
        elif not param_value_ok(spec, value):
            hint = ' (quote it: "..." )' if spec.type == "string" else ""
            errors.append(
                FieldError(
                    f"{path}.{name}",
                    value,
                    f"param {name!r} must be of type {spec.type}",
                    f"write a value of type {spec.type}{hint}",
                )
            )
    return errors


def param_value_ok(spec: ParamSpec, value: Any) -> bool:
    """Whether ``value`` has the param's declared type (booleans are not numbers)."""
    if spec.type == "string":
        return isinstance(value, str)
    if spec.type == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if spec.type == "integer":
        return isinstance(value, int)
    return isinstance(value, int | float)


def _bindings(
    app: Application, i: int, typed: Mapping[str, ComponentType], errors: list[FieldError]
) -> dict[str, str]:
    component = app.spec.components[i]
    ctype = typed[component.name]
    where = f"spec.components[{i}]"
    names = {c.name for c in app.spec.components}
    result: dict[str, str] = {}
    for dep in ctype.spec.dependencies:
        target = component.uses.get(dep.name)
        if target is not None:
            if target not in names:
                errors.append(
                    FieldError(
                        f"{where}.uses.{dep.name}",
                        target,
                        f"no component named {target!r}",
                        f"bind a {dep.type} component of this Application",
                    )
                )
            elif target in typed and typed[target].name != dep.type and target != component.name:
                errors.append(
                    FieldError(
                        f"{where}.uses.{dep.name}",
                        target,
                        f"{target!r} is a {typed[target].name}, not a {dep.type}",
                        f"bind a {dep.type} component",
                    )
                )
            else:
                result[dep.name] = target
            continue
        preceding = [
            c.name
            for c in app.spec.components[:i]
            if c.name in typed and typed[c.name].name == dep.type
        ]
        total = sum(z.size for r in component.regions for z in r.zones)
        needed = dep.required or (
            dep.required_above_size is not None and total > dep.required_above_size
        )
        if preceding:
            result[dep.name] = preceding[-1]
        elif needed and not dep.required:
            errors.append(
                FieldError(
                    f"{where}.regions",
                    total,
                    f"{total} members of {ctype.name} need a {dep.type} "
                    f"({dep.description or dep.name}); without one at most "
                    f"{dep.required_above_size} may run",
                    f"add a {dep.type} component before it and bind it "
                    f"(uses: {{{dep.name}: <component>}}), or run "
                    f"{dep.required_above_size} member(s)",
                )
            )
        elif dep.required:
            errors.append(
                FieldError(
                    f"{where}.uses",
                    dict(component.uses),
                    f"{component.name} needs a {dep.type} ({dep.description or dep.name}) and "
                    f"no {dep.type} component precedes it",
                    f"add a {dep.type} component before it, or bind one: "
                    f"uses: {{{dep.name}: <component>}}",
                )
            )
    return result


def _dependency_order(
    app: Application, bindings: Mapping[str, Mapping[str, str]], errors: list[FieldError]
) -> list[str]:
    """Components in spec order, moved after what they use; cycles are reported."""
    index = {c.name: i for i, c in enumerate(app.spec.components)}
    order: list[str] = []
    state: dict[str, str] = {}
    reported: set[frozenset[str]] = set()

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            cycle = [*trail[trail.index(name) :], name]
            key = frozenset(cycle)
            if key not in reported:
                reported.add(key)
                first = min(cycle[:-1], key=index.__getitem__)
                errors.append(
                    FieldError(
                        f"spec.components[{index[first]}].uses",
                        dict(app.spec.components[index[first]].uses),
                        f"dependency cycle: {' -> '.join(cycle)}",
                        "remove one binding of the cycle from `uses`",
                    )
                )
            return
        state[name] = "active"
        for target in sorted(bindings.get(name, {}).values(), key=lambda n: index.get(n, -1)):
            if target in bindings:
                visit(target, [*trail, name])
        state[name] = "done"
        order.append(name)

    for component in app.spec.components:
        if component.name in bindings:
            visit(component.name, [])
    return order


def _merge(base: Any, *overrides: Any) -> Any:
    result = base
    for override in overrides:
        if override is not None:
            result = result.model_copy(update=override.model_dump(exclude_none=True))
    return result


def _resolved_component(
    component: Component,
    index: int,
    ctype: ComponentType,
    bindings: Mapping[str, str],
    assignment: MemberAssignment,
) -> ResolvedComponent:
    spec = ctype.spec
    zones: list[ResolvedZone] = []
    defaults = {p.name: p.default for p in spec.params if p.default is not None}
    for region in component.regions:
        for zone in region.zones:
            zones.append(_resolved_zone(component, zone, region.name, ctype, defaults, assignment))
    return ResolvedComponent(
        name=component.name,
        index=index,
        type=ctype,
        workload=component.workload or spec.workload,
        bindings=MappingProxyType(dict(bindings)),
        zones=tuple(zones),
    )


def _resolved_zone(
    component: Component,
    zone: Zone,
    region: str,
    ctype: ComponentType,
    defaults: Mapping[str, Any],
    assignment: MemberAssignment,
) -> ResolvedZone:
    profile_name = zone.config or component.config
    profile = ctype.spec.profiles[profile_name]
    version = zone.version or component.version
    image = zone.image or component.image or ctype.spec.image_for(version) or ""
    params = {**defaults, **profile.params, **component.params, **zone.params}
    return ResolvedZone(
        region=region,
        name=zone.name,
        size=zone.size,
        cluster=zone.cluster,
        version=version,
        image=image,
        profile=profile_name,
        params=MappingProxyType(dict(sorted(params.items()))),
        resources=_merge(Resources(), profile.resources, component.resources, zone.resources),
        storage=_merge(Storage(), profile.storage, component.storage, zone.storage),
        nodes=tuple(zone.nodes),
        member_ids=tuple(assignment.zones[zone.name].ids),
    )

"""Checks of an Application that need no ComponentType: unique names, lengths, pinning."""

from __future__ import annotations

from milkyway.model.application import Application
from milkyway.model.errors import FieldError

MAX_BASE_NAME = 47
"""Longest ``<application>-<component>-<zone>``: StatefulSet pod names add ``-<ordinal>``
and the controller-revision-hash label must stay within 63 characters."""


def check_application(app: Application) -> list[FieldError]:
    """Every type-independent problem of ``app`` (empty list when none)."""
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for i, component in enumerate(app.spec.components):
        where = f"spec.components[{i}]"
        if component.name in seen:
            errors.append(
                FieldError(
                    f"{where}.name",
                    component.name,
                    f"component name already used by spec.components[{seen[component.name]}]",
                    "give every component a unique name",
                )
            )
        seen.setdefault(component.name, i)
        if component.name in component.uses.values():
            errors.append(
                FieldError(
                    f"{where}.uses",
                    dict(component.uses),
                    "a component cannot use itself",
                    "bind the dependency to another component",
                )
            )
        errors.extend(_check_zones(app, i))
    return errors


def _check_zones(app: Application, index: int) -> list[FieldError]:
    component = app.spec.components[index]
    where = f"spec.components[{index}]"
    errors: list[FieldError] = []
    regions: dict[str, int] = {}
    zones: dict[str, str] = {}
    for r, region in enumerate(component.regions):
        if region.name in regions:
            errors.append(
                FieldError(
                    f"{where}.regions[{r}].name",
                    region.name,
                    f"region listed twice (also {where}.regions[{regions[region.name]}])",
                    "list each region once, with all its zones",
                )
            )
        regions.setdefault(region.name, r)
        for z, zone in enumerate(region.zones):
            path = f"{where}.regions[{r}].zones[{z}]"
            if zone.name in zones:
                errors.append(
                    FieldError(
                        f"{path}.name",
                        zone.name,
                        f"zone listed twice (also {zones[zone.name]})",
                        "list each zone once per component",
                    )
                )
            zones.setdefault(zone.name, path)
            base = f"{app.metadata.name}-{component.name}-{zone.name}"
            if len(base) > MAX_BASE_NAME:
                errors.append(
                    FieldError(
                        f"{path}.name",
                        zone.name,
                        f"resource names '{base}' would be {len(base)} characters, over "
                        f"{MAX_BASE_NAME}",
                        "shorten the application, component or zone name",
                    )
                )
            if zone.nodes and len(set(zone.nodes)) != len(zone.nodes):
                errors.append(
                    FieldError(
                        f"{path}.nodes",
                        list(zone.nodes),
                        "a node is listed twice: two members on one node share its fate",
                        "list distinct nodes",
                    )
                )
    return errors


def unknown_flows(app: Application, known: set[str]) -> list[FieldError]:
    """A component's ``flows`` naming a Flow that is not in ``known``: the operator would
    find nothing to run when the operation comes, and the Application would stall."""
    errors: list[FieldError] = []
    shown = ", ".join(sorted(known)[:8]) + (", ..." if len(known) > 8 else "")
    for i, component in enumerate(app.spec.components):
        for operation, name in component.flows.items():
            if name not in known:
                errors.append(
                    FieldError(
                        f"spec.components[{i}].flows.{operation}",
                        name,
                        f"no Flow named {name!r} exists",
                        f"create the Flow first (milkyway apply -f FLOW.yaml), or name an "
                        f"existing one: {shown}",
                    )
                )
    return errors

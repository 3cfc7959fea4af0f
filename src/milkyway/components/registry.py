"""The component-type registry: built-in types shipped as package data, plus user types
read from ``ComponentType`` resources (the same model, so users add types without code).

A built-in type is a folder under ``builtin/`` holding ``componenttype.yaml`` (a
ComponentType resource) and one ``<file>.j2`` Jinja2 template per config file that has
no inline ``template``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from milkyway.model.component_type import ComponentType
from milkyway.model.errors import FieldError, ValidationFailed, format_path

_BUILTIN = "builtin"
_RESOURCE_FILE = "componenttype.yaml"


class ComponentTypeRegistry(Mapping[str, ComponentType]):
    """Read-only map of type name to ComponentType; later sources override earlier ones."""

    def __init__(self, types: Iterable[ComponentType] = ()) -> None:
        self._types: dict[str, ComponentType] = {}
        for item in types:
            self._types[item.name] = item

    def __getitem__(self, name: str) -> ComponentType:
        return self._types[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._types))

    def __len__(self) -> int:
        return len(self._types)

    def with_types(self, types: Iterable[ComponentType]) -> ComponentTypeRegistry:
        """A new registry where ``types`` add to or replace the types of this one."""
        return ComponentTypeRegistry([*self._types.values(), *types])


def component_type_from_resource(data: Mapping[str, Any]) -> ComponentType:
    """Validate a ComponentType resource (as read from the API server or a file)."""
    try:
        return ComponentType.model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationFailed(
            [
                FieldError(
                    format_path(tuple(e["loc"])),
                    e.get("input"),
                    e["msg"],
                    "fix the ComponentType; see docs/component-types.md",
                )
                for e in exc.errors(include_url=False)
            ]
        ) from None


def registry_from_resources(
    items: Iterable[Mapping[str, Any]], base: ComponentTypeRegistry | None = None
) -> ComponentTypeRegistry:
    """Built-in types (or ``base``) overridden and extended by ComponentType resources."""
    base = builtin_component_types() if base is None else base
    return base.with_types(component_type_from_resource(item) for item in items)


@cache
def builtin_component_types() -> ComponentTypeRegistry:
    """The types shipped with Milkyway: zookeeper, kafka, flink-jobmanager,
    flink-taskmanager, etcd."""
    root = resources.files(__package__) / _BUILTIN
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name)
    return ComponentTypeRegistry(
        _load_folder(folder) for folder in folders if (folder / _RESOURCE_FILE).is_file()
    )


def _load_folder(folder: Traversable) -> ComponentType:
    data = yaml.safe_load((folder / _RESOURCE_FILE).read_text())
    for entry in data.get("spec", {}).get("configFiles", []):
        if "template" not in entry:
            entry["template"] = (folder / f"{entry['name']}.j2").read_text()
    return component_type_from_resource(data)

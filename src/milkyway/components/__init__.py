"""Built-in component types (ZooKeeper, Kafka, Flink, etcd) and the type registry."""

from milkyway.components.registry import (
    ComponentTypeRegistry,
    builtin_component_types,
    component_type_from_resource,
    registry_from_resources,
)

__all__ = [
    "ComponentTypeRegistry",
    "builtin_component_types",
    "component_type_from_resource",
    "registry_from_resources",
]

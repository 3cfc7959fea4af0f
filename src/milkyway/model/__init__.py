"""Milkyway's resource models (Application, Cluster, ComponentType), their validation and
the CRDs generated from them. Pure code: depends on nothing of Milkyway's but itself.

The entry points other layers use:

* :func:`load_application` — YAML text to a valid :class:`Application`;
* :func:`resolve` — types, bindings, identities and dependency order
  (:class:`ResolvedApplication`);
* :func:`load_resolved` — both at once, as ``milkyway validate`` does;
* :class:`ValidationFailed` / :class:`FieldError` — every problem, with path, value and fix.
"""

from milkyway.model.application import Application
from milkyway.model.cluster import Cluster
from milkyway.model.component_type import ComponentType
from milkyway.model.errors import FieldError, ValidationFailed
from milkyway.model.load import application_from_data, load_application, load_resolved
from milkyway.model.resolve import ResolvedApplication, ResolvedComponent, ResolvedZone, resolve

__all__ = [
    "Application",
    "Cluster",
    "ComponentType",
    "FieldError",
    "ResolvedApplication",
    "ResolvedComponent",
    "ResolvedZone",
    "ValidationFailed",
    "application_from_data",
    "load_application",
    "load_resolved",
    "resolve",
]

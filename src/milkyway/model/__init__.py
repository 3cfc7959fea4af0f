"""Milkyway's resource models (Application, Cluster, ComponentType), their validation and
the CRDs generated from them. Pure code: depends on nothing of Milkyway's but itself.

The entry points other layers use:

* :func:`load_application` — YAML text to a valid :class:`Application`;
* :func:`resolve` — types, bindings, identities and dependency order
  (:class:`ResolvedApplication`);
* :func:`load_resolved` — both at once, as ``milkyway validate`` does;
* :class:`ValidationFailed` / :class:`FieldError` — every problem, with path, value and fix.

Exports load on first use, so a process that needs one model (the sidecar agent reads
only its declaration) does not pay for all of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Application": "milkyway.model.application",
    "Cluster": "milkyway.model.cluster",
    "ComponentType": "milkyway.model.component_type",
    "FieldError": "milkyway.model.errors",
    "ValidationFailed": "milkyway.model.errors",
    "application_from_data": "milkyway.model.load",
    "load_application": "milkyway.model.load",
    "load_resolved": "milkyway.model.load",
    "ResolvedApplication": "milkyway.model.resolve",
    "ResolvedComponent": "milkyway.model.resolve",
    "ResolvedZone": "milkyway.model.resolve",
    "resolve": "milkyway.model.resolve",
}

if TYPE_CHECKING:
    from milkyway.model.application import Application
    from milkyway.model.cluster import Cluster
    from milkyway.model.component_type import ComponentType
    from milkyway.model.errors import FieldError, ValidationFailed
    from milkyway.model.load import application_from_data, load_application, load_resolved
    from milkyway.model.resolve import (
        ResolvedApplication,
        ResolvedComponent,
        ResolvedZone,
        resolve,
    )


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'milkyway.model' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


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

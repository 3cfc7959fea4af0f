"""YAML output of rendered manifests, as ``milkyway render`` prints them and the golden
files store them: config files and scripts as literal blocks, no anchors."""

from __future__ import annotations

from typing import Any

import yaml


class _ManifestDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ManifestDumper.add_representer(str, _str)


def dump_manifest(manifest: dict[str, Any]) -> str:
    """One manifest as YAML."""
    return yaml.dump(manifest, Dumper=_ManifestDumper, sort_keys=False, width=100)


def dump_manifests(manifests: list[dict[str, Any]], header: str = "") -> str:
    """Several manifests as one multi-document YAML stream, each preceded by ``header``."""
    return "---\n".join(f"{header}{dump_manifest(m)}" for m in manifests)

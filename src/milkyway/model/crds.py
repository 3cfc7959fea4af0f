"""Every CustomResourceDefinition Milkyway installs, and the regenerator of ``deploy/crds/``.

To add a resource, give its model a ``crd: ClassVar[CrdInfo]`` attribute and add one line
``"module:Class"`` to :data:`CRD_MODELS`; then run ``python -m milkyway.model.crds --write
deploy/crds`` and commit the result (a test fails while ``deploy/crds/`` is stale).
Entries are import paths so that a new model is registered without touching imports here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from milkyway.model.crd_schema import build_crd

CRD_MODELS: tuple[str, ...] = (
    "milkyway.model.application:Application",
    "milkyway.model.cluster:Cluster",
    "milkyway.model.component_type:ComponentType",
    "milkyway.model.flow:Flow",
    "milkyway.model.flow:FlowRun",
    "milkyway.model.approval_policy:ApprovalPolicy",
)


def crd_models() -> list[type[BaseModel]]:
    """The resource model classes of :data:`CRD_MODELS`, imported."""
    models: list[type[BaseModel]] = []
    for entry in CRD_MODELS:
        module_name, _, class_name = entry.partition(":")
        models.append(getattr(importlib.import_module(module_name), class_name))
    return models


def all_crds() -> list[dict[str, Any]]:
    """Every CRD, in registration order."""
    return [build_crd(model) for model in crd_models()]


def crd_files() -> dict[str, str]:
    """File name (``<plural>.<group>.yaml``) to YAML text, as committed under deploy/crds."""
    return {f"{crd['metadata']['name']}.yaml": dump_yaml(crd) for crd in all_crds()}


def dump_yaml(document: dict[str, Any]) -> str:
    """Stable block-style YAML (keys in insertion order, long strings unwrapped)."""
    return yaml.dump(
        document, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False, width=1000
    )


class _NoAliasDumper(yaml.SafeDumper):
    """Writes repeated sub-documents in full: anchors would puzzle readers of the CRDs."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m milkyway.model.crds", description="Generate Milkyway's CRDs."
    )
    parser.add_argument("--write", metavar="DIR", help="write one YAML file per CRD into DIR")
    parser.add_argument(
        "--check", metavar="DIR", help="exit 1 if DIR differs from the generated CRDs"
    )
    args = parser.parse_args(argv)
    files = crd_files()
    if args.check:
        stale = _stale(Path(args.check), files)
        for name in stale:
            print(f"stale: {name}", file=sys.stderr)
        return 1 if stale else 0
    if args.write:
        folder = Path(args.write)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text)
        return 0
    sys.stdout.write("---\n".join(files.values()))
    return 0


def _stale(folder: Path, files: dict[str, str]) -> list[str]:
    present = {p.name for p in folder.glob("*.yaml")} if folder.is_dir() else set()
    stale = [n for n, text in files.items() if n not in present or (folder / n).read_text() != text]
    return sorted(stale + sorted(present - set(files)))


if __name__ == "__main__":
    raise SystemExit(main())

"""Golden files: the reviewed manifests of the examples, one file per deploy pattern.

Regenerate after an intended change with ``MILKYWAY_REGENERATE_GOLDEN=1 pytest
tests/unit/render/test_golden.py`` and review the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from milkyway.model import load_resolved
from milkyway.model.cluster import Cluster
from milkyway.render import render_zone
from milkyway.render.output import dump_manifests

from .conftest import TYPES

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden"
EXAMPLES = ROOT / "examples"
REGENERATE = os.environ.get("MILKYWAY_REGENERATE_GOLDEN") == "1"

CASES = {
    "statefulset-and-deployment-stream1": ("stream1.yaml", None),
    "deploymentset-events": ("deploymentset.yaml", None),
    "pods-meta": ("local-pods.yaml", None),
    "multi-region-orders-phx": ("multi-region.yaml", "phx"),
    "multi-region-orders-ams": ("multi-region.yaml", "ams"),
}


def _clusters() -> dict[str, Cluster]:
    docs = yaml.safe_load_all((EXAMPLES / "clusters.yaml").read_text())
    return {c.spec.zone: c for c in (Cluster.model_validate(d) for d in docs)}


def render_example(example: str, zone: str | None) -> str:
    resolved = load_resolved((EXAMPLES / example).read_text(), TYPES)
    clusters = _clusters() if zone else {}
    parts = []
    for name, component in resolved.components.items():
        for item in component.zones:
            if zone is not None and item.name != zone:
                continue
            manifests = render_zone(resolved, name, item.name, clusters=clusters)
            parts.append(dump_manifests(manifests, f"# {name} in zone {item.name}\n"))
    return "---\n".join(parts)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_matches_the_golden_file(case: str) -> None:
    example, zone = CASES[case]
    text = render_example(example, zone)
    path = GOLDEN / f"{case}.yaml"
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"missing {path}; run with MILKYWAY_REGENERATE_GOLDEN=1"
    assert text == path.read_text(), (
        f"{path.name} differs; if intended, regenerate with MILKYWAY_REGENERATE_GOLDEN=1 "
        "and review the diff"
    )


def test_golden_files_have_no_orphans() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.yaml")) == sorted(CASES)


def test_each_pattern_has_a_golden_file() -> None:
    kinds = set()
    for path in GOLDEN.glob("*.yaml"):
        kinds |= {doc["kind"] for doc in yaml.safe_load_all(path.read_text()) if doc}
    assert {"StatefulSet", "Deployment", "Pod", "PersistentVolume"} <= kinds

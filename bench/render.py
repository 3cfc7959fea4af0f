"""How long validating, resolving and rendering take, against strict schema validation of
the same manifests as the baseline (what every test pays per manifest).

Run: .venv/bin/python bench/render.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from milkyway.components import builtin_component_types
from milkyway.model import load_resolved
from milkyway.render import render_application

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TYPES = builtin_component_types()


def _time(action: Callable[[], Any], repeat: int) -> float:
    """Median seconds of ``action`` over ``repeat`` runs (after one warm-up)."""
    action()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _wide(zones: int, size: int) -> str:
    data = yaml.safe_load((EXAMPLES / "stream1.yaml").read_text())
    layout = [{"name": f"z{i}", "size": size} for i in range(zones)]
    data["spec"]["components"] = [
        {"name": "zookeeper1", "version": "3.9.3", "regions": [{"name": "NA", "zones": layout}]},
        {
            "name": "kafka1",
            "version": "3.9.1",
            "workload": "deploymentset",
            "regions": [{"name": "NA", "zones": layout}],
        },
    ]
    return yaml.safe_dump(data)


def main() -> None:
    cases = {
        "stream1 (talk, 1 zone, 13 members)": (EXAMPLES / "stream1.yaml").read_text(),
        "multi-region (3 zones, 20 members)": (EXAMPLES / "multi-region.yaml").read_text(),
        "wide (9 zones x 5, zk + kafka deploymentset)": _wide(9, 5),
    }
    print(
        f"{'case':48} {'load+resolve':>13} {'render':>10} {'manifests':>10} "
        f"{'validate':>10} {'render/validate':>16}"
    )
    for name, text in cases.items():
        resolved = load_resolved(text, TYPES)
        rendered = [m for ms in render_application(resolved).values() for m in ms]
        load = _time(lambda text=text: load_resolved(text, TYPES), 20)
        render = _time(lambda resolved=resolved: render_application(resolved), 20)
        validate = _time(
            lambda rendered=rendered: [
                kubernetes_validate.validate(m, "1.32", strict=True) for m in rendered
            ],
            3,
        )
        print(
            f"{name:48} {load * 1e3:11.1f}ms {render * 1e3:8.1f}ms {len(rendered):10d} "
            f"{validate * 1e3:8.1f}ms {render / validate:16.2f}"
        )


if __name__ == "__main__":
    main()

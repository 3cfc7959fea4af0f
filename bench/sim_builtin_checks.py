"""What parsing time fields and dropping empty maps/lists costs on built-in writes.

Every write of a built-in object walks it along its type definition twice: once to parse
its ``metav1.Time``/``MicroTime`` values as Go would (:mod:`timevalues`), once to drop the
empty optional maps and lists (:mod:`omitempty`). This script replaces a running pod's
status (conditions and container statuses full of timestamps, as a kubelet writes it)
and creates ConfigMaps in process, with both walks and, as the baseline in the same
process, with them switched off, alternating rounds; it prints the median writes/s of
each and how many fewer writes per second the walks allow.

Run: ``.venv/bin/python bench/sim_builtin_checks.py [--writes 3000]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from milkyway.sim.apiserver import api as api_module
from milkyway.sim.apiserver.api import ClusterAPI


def pod_status(n: int) -> dict[str, Any]:
    stamp = f"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}Z"
    return {
        "phase": "Running",
        "conditions": [
            {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp}
            for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
        ],
        "hostIP": "10.0.0.1",
        "podIP": "10.244.0.5",
        "startTime": stamp,
        "containerStatuses": [
            {
                "name": f"c{i}",
                "image": "nginx:1.27",
                "imageID": "sim://nginx:1.27",
                "ready": True,
                "restartCount": n,
                "started": True,
                "state": {"running": {"startedAt": stamp}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": stamp}},
            }
            for i in range(3)
        ],
    }


def run(writes: int) -> dict[str, float]:
    api = ClusterAPI()
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "labels": {"app": "x"}},
            "spec": {"containers": [{"name": f"c{i}", "image": "nginx:1.27"} for i in range(3)]},
        }
    )
    started = time.perf_counter()
    for n in range(writes):
        api.patch("pods", "p", {"status": pod_status(n)}, subresource="status")
    status_rate = writes / (time.perf_counter() - started)
    started = time.perf_counter()
    for n in range(writes):
        api.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"cm-{n}", "labels": {"app": "x"}, "annotations": {}},
                "data": {"key": "value"},
            }
        )
    create_rate = writes / (time.perf_counter() - started)
    return {"pod status patch/s": status_rate, "configmap create/s": create_rate}


def _off(*_args: Any, **_kwargs: Any) -> None:
    return None


def _baseline(writes: int) -> dict[str, float]:
    saved: tuple[Callable[..., Any], Callable[..., Any]] = (
        api_module.check_times,
        api_module.drop_empty,
    )
    api_module.check_times = _off  # type: ignore[assignment]
    api_module.drop_empty = _off  # type: ignore[assignment]
    try:
        return run(writes)
    finally:
        api_module.check_times, api_module.drop_empty = saved  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    run(200)  # warm up the schema caches
    checked: list[dict[str, float]] = []
    plain: list[dict[str, float]] = []
    # Alternate the two so that a change in the machine's load hits both alike; report the
    # median round of each.
    for _ in range(args.rounds):
        checked.append(run(args.writes))
        plain.append(_baseline(args.writes))
    for key in checked[0]:
        rate = statistics.median(r[key] for r in checked)
        base = statistics.median(r[key] for r in plain)
        print(
            f"{key:22} {rate:8.0f} with the walks, {base:8.0f} without "
            f"({(base - rate) / base * 100:.1f}% fewer writes/s)"
        )


if __name__ == "__main__":
    main()

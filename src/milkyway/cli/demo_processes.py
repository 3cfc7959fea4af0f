"""Which of the demo's pods run as real processes, and the summary the demo prints.

ZooKeeper and etcd images run Debian's servers (the simulator's built-in mapping). The
sidecar agent next to each member has no ``milkyway agent`` command yet, so the demo
maps its image to a listener on the agent's port that answers its readiness probe;
Kafka and Flink images are not mapped and stay simulated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from milkyway.sim.process import ImageMap, parse_run
from milkyway.sim.process.runtime import ProcessRuntime

AGENT_LISTENER = parse_run(
    "milkyway/milkyway:*=python3 -c \"import socket; s = socket.create_server(('0.0.0.0', 8471));"
    ' [s.accept()[0].close() for _ in iter(int, 1)]"'
)


def demo_images() -> ImageMap:
    return ImageMap([AGENT_LISTENER])


def real_members_table(runtimes: Mapping[str, ProcessRuntime]) -> Table:
    """One row per pod running as real processes: cluster, pod, address, main pid."""
    table = Table(box=None, pad_edge=False, title="Real processes", title_justify="left")
    for column in ("CLUSTER", "NAMESPACE", "POD", "ADDRESS", "PID", "RESTARTS"):
        table.add_column(column)
    for cluster, runtime in sorted(runtimes.items()):
        for (namespace, pod), box in sorted(runtime.pods.items()):
            handle = runtime.container(namespace, pod)
            if handle is None:
                continue
            table.add_row(
                cluster,
                namespace,
                pod,
                box.ip,
                str(handle.pid or "-"),
                str(handle.restart_count),
            )
    return table


def simulated_summary(runtimes: Mapping[str, ProcessRuntime], pods: list[dict[str, Any]]) -> str:
    """'N pods simulated (images: ...)' for the pods no runtime runs."""
    real = {(ns, name) for r in runtimes.values() for (ns, name) in r.pods}
    images: set[str] = set()
    count = 0
    for pod in pods:
        md = pod.get("metadata") or {}
        if (md.get("namespace"), md.get("name")) in real:
            continue
        count += 1
        for c in (pod.get("spec") or {}).get("containers") or []:
            images.add(str(c.get("image", "")).rsplit("/", 1)[-1].split(":")[0])
    return f"{count} pods simulated (images: {', '.join(sorted(images)) or '-'})"

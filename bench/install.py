"""The install on the simulator, timed: docs/install.md's simulator block, as a user runs it.

Prints, asserting nothing:

* from ``kubectl apply -k deploy/overlays/simulator`` to stream1 Ready (the Deployments
  rolled out, two member clusters registered, stream1 provisioned; its ZooKeeper pods run
  Debian's ZooKeeper when it is installed, its other pods are simulated);
* from the forced deletion of the leading operator pod to the standby holding the Lease
  (the design bound: the 15 s lease plus one 2 s retry period);
* from ``kubectl delete applications --all`` to the install removed.

The simulator runs in this process (three clusters, RBAC enforced); every command runs in
a shell with ``KUBECONFIG`` set, as the block is written.

    .venv/bin/python bench/install.py
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.process import ImageMap
from milkyway.sim.process.images import builtin_rules

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "milkyway-system"


def simulator_block() -> list[str]:
    """The commands of the second ``sh`` block under "Try it on the simulator"."""
    section = (ROOT / "docs" / "install.md").read_text().split("## Try it on the simulator")[1]
    block = re.findall(r"```sh\n(.*?)```", section, flags=re.S)[1]
    return [" ".join(line.split()) for line in block.replace("\\\n", " ").splitlines() if line]


async def run(env: dict[str, str], command: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        command,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{command!r} exited {proc.returncode}:\n{out.decode()}")
    return out.decode()


async def holder(env: dict[str, str]) -> str:
    lease: Any = json.loads(
        await run(env, f"kubectl -n {SYSTEM} get lease milkyway-operator -o json")
    )
    return str(lease["spec"].get("holderIdentity") or "")


async def handover(env: dict[str, str]) -> float:
    leader = await holder(env)
    await run(env, f"kubectl -n {SYSTEM} delete pod {leader} --grace-period=0 --force")
    killed = time.monotonic()
    while (await holder(env)) in (leader, ""):
        if time.monotonic() - killed > 120:
            raise SystemExit("no standby took the Lease within 120 s")
        await asyncio.sleep(0.25)
    return time.monotonic() - killed


async def main() -> None:
    rules = [r for r in builtin_rules() if "milkyway" in r.pattern or "zookeeper" in r.pattern]
    real_zookeeper = not next(r for r in rules if r.matches("zookeeper:3.8")).missing()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mw-bench-install-") as folder:
        kubeconfig = Path(folder) / "kubeconfig"
        async with (
            SimulatedClusters(
                ["mgmt", "na-phx", "na-slc"], kubeconfig_path=kubeconfig, rbac=True
            ) as sim,
            ControlledClusters(
                sim,
                nodes=3,
                config=ControlPlaneConfig.fast(node_grace_period=60.0),
                images=ImageMap(rules, builtins=False),
            ),
        ):
            env = {
                **os.environ,
                "KUBECONFIG": str(kubeconfig),
                "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            }
            started = time.monotonic()
            for command in simulator_block():
                if command.startswith("kubectl delete applications"):
                    figures["leader handover after its pod is killed (s)"] = await handover(env)
                    await run(
                        env,
                        "kubectl -n milkyway wait application/stream1 "
                        "--for=condition=Ready --timeout=300s",
                    )
                    started = time.monotonic()
                await run(env, command)
                if "wait application/stream1" in command:
                    figures["kubectl apply -k to stream1 Ready (s)"] = time.monotonic() - started
            figures["delete applications to install removed (s)"] = time.monotonic() - started
    load = os.getloadavg()[0]
    print(
        f"install on the simulator ({os.cpu_count()} cores, load average {load:.1f}; "
        f"ZooKeeper {'real' if real_zookeeper else 'simulated'})"
    )
    for name, value in figures.items():
        print(f"  {name}: {value:.1f}")


if __name__ == "__main__":
    asyncio.run(main())

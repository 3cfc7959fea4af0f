"""The install, proven on the simulator: docs/install.md's simulator block, run as written.

The simulator runs in this process with RBAC enforced; the image ``milkyway/milkyway``
runs as the installed ``milkyway`` and ZooKeeper images as Debian's ZooKeeper (the
built-in rules), every other image is simulated, so the operator and server pods are real
processes with in-cluster configuration, stream1's two ZooKeeper ensembles are real
servers (with their sidecar agents) and its Kafka and Flink pods are KWOK-style. Between
the block's commands the test checks what the block cannot show: real processes as the
image's user, leader election, ZooKeeper quorums, /metrics, the reconcile counter and a
leader handover after its pod is killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from milkyway.kube.member_access import WORKLOAD_RULES, cluster_rules
from milkyway.sim.apiserver.server import AccessRecord
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.process import ImageMap
from milkyway.sim.process.images import ZOOKEEPER_HOME, ImageRule, builtin_rules

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "install.md"
SYSTEM = "milkyway-system"
OPERATOR_USER = "system:serviceaccount:milkyway-system:milkyway-operator"
IMAGE_USER = 65532
"""The Dockerfile's ``USER``, which the base Deployments ask for."""
LEASE_SECONDS = 15.0
RETRY_SECONDS = 2.0


Use = tuple[str, str, str]
"""(API group, resource[/subresource], verb) as RBAC sees a request."""


class Usage:
    """Every request the operator's account makes, per cluster (the management cluster
    and the union of the members), recorded by the simulated API servers."""

    def __init__(self) -> None:
        self.management: set[Use] = set()
        self.members: set[Use] = set()

    def recorder(self, management: bool) -> Any:
        seen = self.management if management else self.members

        def record(access: AccessRecord) -> None:
            if access.user == OPERATOR_USER:
                resource = access.resource
                if access.subresource:
                    resource = f"{resource}/{access.subresource}"
                seen.add((access.group, resource, access.verb))

        return record


def granted(rules: list[dict[str, Any]]) -> set[Use]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def operator_rules() -> list[dict[str, Any]]:
    docs = yaml.safe_load_all((ROOT / "deploy" / "base" / "operator-rbac.yaml").read_text())
    return [r for d in docs if d["kind"] in ("ClusterRole", "Role") for r in d["rules"]]


def simulator_block() -> list[str]:
    """The commands of the second ``sh`` block under "Try it on the simulator" (the first
    starts the simulator, which this test does in its own process)."""
    section = DOC.read_text().split("## Try it on the simulator", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 2, "docs/install.md lost its simulator blocks"
    commands: list[str] = []
    for line in blocks[1].replace("\\\n", " ").splitlines():
        if line.strip():
            commands.append(" ".join(line.split()))
    return commands


class Shell:
    """Runs commands like a user's shell with KUBECONFIG set and the venv first on PATH,
    without blocking the event loop the simulator runs in."""

    def __init__(self, kubeconfig: Path) -> None:
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }

    async def run(self, command: str, within: float = 900.0) -> str:
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            command,
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), within)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"{command!r} did not finish within {within:.0f}s") from None
        text = out.decode()
        assert proc.returncode == 0, f"{command!r} exited {proc.returncode}:\n{text}"
        return text

    async def json(self, command: str) -> Any:
        return json.loads(await self.run(command))


async def _pods(shell: Shell, name: str) -> list[dict[str, Any]]:
    listed = await shell.json(
        f"kubectl -n {SYSTEM} get pods -l app.kubernetes.io/name={name} -o json"
    )
    return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]


async def _holder(shell: Shell) -> str:
    lease = await shell.json(f"kubectl -n {SYSTEM} get lease milkyway-operator -o json")
    return str(lease["spec"].get("holderIdentity") or "")


def _scrape(ip: str, port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    with urllib.request.urlopen(f"http://{ip}:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def _https_status(ip: str, port: int, path: str) -> int:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"https://{ip}:{port}{path}", context=context, timeout=10):
            return 200
    except urllib.error.HTTPError as exc:
        return exc.code


async def scrape(ip: str, port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    return await asyncio.to_thread(_scrape, ip, port)


def _reconciles(samples: dict[str, dict[tuple[tuple[str, str], ...], float]]) -> float:
    return samples.get("milkyway_reconciles_total", {}).get((("result", "success"),), 0.0)


async def _ready_pods(shell: Shell, name: str, count: int, within: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        pods = await _pods(shell, name)
        ready = [
            p
            for p in pods
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p.get("status", {}).get("conditions", [])
            )
        ]
        if len(ready) >= count:
            return ready
        assert time.monotonic() < deadline, f"{name}: {len(ready)}/{count} pods Ready"
        await asyncio.sleep(1.0)


async def test_install_reconcile_failover_uninstall(tmp_path: Path) -> None:
    commands = simulator_block()
    kubeconfig = tmp_path / "kubeconfig"
    if not (ZOOKEEPER_HOME / "bin" / "zkServer.sh").exists() or shutil.which("java") is None:
        pytest.fail("Debian's zookeeper is needed: apt-get install -y zookeeper")
    rules = [r for r in builtin_rules() if "milkyway" in r.pattern or "zookeeper" in r.pattern]
    images = ImageMap(rules, builtins=False)
    figures: dict[str, float] = {}
    names = ["mgmt", "na-phx", "na-slc"]
    async with (
        SimulatedClusters(names, kubeconfig_path=kubeconfig, rbac=True) as sim,
        ControlledClusters(
            sim, nodes=3, config=ControlPlaneConfig.fast(node_grace_period=60.0), images=images
        ) as ctl,
    ):
        usage = Usage()
        for name in names:
            sim[name].server.access_hook = usage.recorder(management=name == "mgmt")
        shell = Shell(kubeconfig)
        started = time.monotonic()
        steps = iter(commands)
        for command in steps:
            await shell.run(command)
            if command.startswith("kubectl -n milkyway-system rollout status"):
                await _check_real_processes(shell, sim, rules)
            if command.startswith("kubectl -n milkyway") and " wait application/stream1" in command:
                figures["install to stream1 Ready (s)"] = time.monotonic() - started
                await _check_real_zookeeper(shell, sim)
                await _check_metrics(shell)
                await _scale_out(shell)
                figures["leader handover after kill (s)"] = await _check_failover(shell)
            if command.startswith("kubectl get clusters"):
                break
        for command in steps:
            await shell.run(command)
        await _check_removed(shell)
    assert ctl.leftover_processes() == []
    _check_least_privilege(usage)
    print("\n" + "\n".join(f"{k}: {v:.1f}" for k, v in figures.items()))


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no Uid line")


async def _check_real_processes(
    shell: Shell, sim: SimulatedClusters, rules: list[ImageRule]
) -> None:
    """The operator and server pods are processes with the in-cluster environment, running
    as the image's user unless this machine's Python is readable only by root (then the
    runtime keeps its own user: ``ImageRule.root_only``)."""
    runtime = sim["mgmt"].runtime
    assert runtime is not None, "the management cluster runs no processes"
    rule = next(r for r in rules if r.matches("milkyway/milkyway:0.1.0"))
    expected_uid = os.getuid() if rule.root_only else IMAGE_USER
    for name, container in (("milkyway-operator", "operator"), ("milkyway-server", "server")):
        pods = await _ready_pods(shell, name, 2, 300)
        for pod in pods:
            handle = runtime.container(SYSTEM, pod["metadata"]["name"], container)
            assert handle is not None and handle.pid is not None, f"{pod['metadata']['name']}"
            assert handle.env.get("KUBERNETES_SERVICE_HOST"), handle.env
            assert handle.pod_ip == pod["status"]["podIP"]
            assert _uid(handle.pid) == expected_uid, (pod["metadata"]["name"], rule.root_only)
    deadline = time.monotonic() + 120
    operators = {p["metadata"]["name"] for p in await _pods(shell, "milkyway-operator")}
    while (holder := await _holder(shell)) not in operators:
        assert time.monotonic() < deadline, f"no operator pod leads (holder {holder!r})"
        await asyncio.sleep(1.0)


async def _check_real_zookeeper(shell: Shell, sim: SimulatedClusters) -> None:
    """stream1's ZooKeeper ensembles (three members each in phx) are real servers that
    formed a quorum: one leader and two followers each, as their ``srvr`` says over TCP;
    and the sidecar agent of each serves ``/metrics`` (through the API server's pod proxy,
    as a user reaches it) that parses and reports its server's mode."""
    runtime = sim["na-phx"].runtime
    assert runtime is not None, "na-phx runs no processes"
    for component in ("zookeeper1", "zookeeper2"):
        boxes = {
            name: box
            for (ns, name), box in runtime.pods.items()
            if ns == "milkyway" and name.startswith(f"stream1-{component}-") and not box.terminating
        }
        assert len(boxes) == 3, f"{component}: {sorted(boxes)} run as processes"
        deadline = time.monotonic() + 120
        while True:
            roles = sorted([await _zk_state(box.ip) for box in boxes.values()])
            if roles == ["follower", "follower", "leader"]:
                break
            assert time.monotonic() < deadline, f"{component}: no quorum ({roles})"
            await asyncio.sleep(1.0)
        for name in boxes:
            # The agent reports the role from its own next check after the quorum formed.
            deadline = time.monotonic() + 60
            while True:
                text = await shell.run(
                    "kubectl --context na-phx get --raw "
                    f"/api/v1/namespaces/milkyway/pods/{name}:8471/proxy/metrics"
                )
                families = {f.name for f in text_string_to_metric_families(text)}
                if "milkyway_data_system_mode" in families:
                    break
                assert time.monotonic() < deadline, (name, sorted(families))
                await asyncio.sleep(1.0)


async def _zk_state(ip: str) -> str:
    """The ``Mode`` ZooKeeper's ``srvr`` reports on ``ip:2181`` ('' when it does not answer
    in 5 s). ``srvr`` is the one four-letter word every version answers by default; the
    rendered configuration of a 3.4 ensemble whitelists no other for the 3.8 server here."""
    try:
        async with asyncio.timeout(5.0):
            reader, writer = await asyncio.open_connection(ip, 2181)
            writer.write(b"srvr")
            await writer.drain()
            text = (await reader.read()).decode(errors="replace")
            writer.close()
    except (OSError, TimeoutError):
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Mode":
            return value.strip()
    return ""


async def _check_metrics(shell: Shell) -> None:
    holder = await _holder(shell)
    leader_ip = ""
    for pod in await _pods(shell, "milkyway-operator"):
        samples = await scrape(pod["status"]["podIP"], 8080)
        leading = samples["milkyway_operator_leader"][()]
        assert leading == (1.0 if pod["metadata"]["name"] == holder else 0.0), pod["metadata"]
        if pod["metadata"]["name"] == holder:
            leader_ip = pod["status"]["podIP"]
            assert samples["milkyway_cluster_reachable"][(("cluster", "na-phx"),)] == 1.0
            assert any(
                dict(k).get("cluster") == "na-phx"
                for k in samples["milkyway_kube_api_requests_total"]
            )
            assert "milkyway_workqueue_depth" in samples
            assert samples["milkyway_flows_finished_total"], "no flow finished on the leader"
    for pod in await _pods(shell, "milkyway-server"):
        ip = pod["status"]["podIP"]
        assert await asyncio.to_thread(_https_status, ip, 8443, "/api/v1/whoami") == 401
        samples = await scrape(ip, 8081)
        counted = samples["milkyway_server_requests_total"]
        assert any(dict(k)["code"] == "401" for k in counted), counted
    before = _reconciles(await scrape(leader_ip, 8080))
    assert before > 0
    await shell.run("kubectl -n milkyway annotate application stream1 example.com/touched=1")
    deadline = time.monotonic() + 60
    while _reconciles(await scrape(leader_ip, 8080)) <= before:
        assert time.monotonic() < deadline, "the reconcile counter did not move"
        await asyncio.sleep(0.5)


async def _check_failover(shell: Shell) -> float:
    holder = await _holder(shell)
    await shell.run(f"kubectl -n {SYSTEM} delete pod {holder} --grace-period=0 --force")
    killed = time.monotonic()
    deadline = killed + LEASE_SECONDS + RETRY_SECONDS + 25
    while (new := await _holder(shell)) in (holder, ""):
        assert time.monotonic() < deadline, "no standby took the Lease within the lease time"
        await asyncio.sleep(0.25)
    handover = time.monotonic() - killed
    assert new != holder
    await shell.run(
        "kubectl -n milkyway wait application/stream1 --for=condition=Ready --timeout=300s"
    )
    return handover


async def _check_removed(shell: Shell) -> None:
    namespaces = await shell.json("kubectl get namespaces -o json")
    assert SYSTEM not in {n["metadata"]["name"] for n in namespaces["items"]}
    crds = await shell.json("kubectl get crds -o json")
    assert not [c for c in crds["items"] if c["spec"]["group"] == "milkyway.ebay.com"]
    left = await shell.json(
        "kubectl --context na-phx get statefulsets,deployments,pods,configmaps,services "
        "-n milkyway -l app.kubernetes.io/managed-by=milkyway -o json"
    )
    assert left["items"] == [], [i["metadata"]["name"] for i in left["items"]]


async def _scale_out(shell: Shell) -> None:
    """A day-2 change the operator carries out with a flow: one more Kafka broker."""
    await shell.run("milkyway scale stream1 kafka1 --zone phx --size 4 -n milkyway")
    deadline = time.monotonic() + 300
    probe = (
        "kubectl --context na-phx -n milkyway get statefulset stream1-kafka1-phx "
        "-o jsonpath='{.status.readyReplicas}'"
    )
    while (await shell.run(probe)).strip() != "4":
        assert time.monotonic() < deadline, "kafka1 did not grow to 4 ready brokers"
        await asyncio.sleep(1.0)
    await shell.run("kubectl -n milkyway wait application/stream1 --for=condition=Ready")


NOT_EXERCISED_MANAGEMENT: dict[Use, str] = {
    ("coordination.k8s.io", "leases", "list"): (
        "sharded replicas count each other by their member Leases (milkyway.operator.sharding)"
    ),
    ("coordination.k8s.io", "leases", "delete"): (
        "a sharded replica deletes its member Lease when it stops (milkyway.operator.sharding)"
    ),
    ("apps", "deployments", "get"): (
        "--shards auto reads the operator Deployment's replica count "
        "(milkyway.operator.shard_count)"
    ),
    ("", "secrets", "create"): (
        "the operator creates the decision key when milkyway server has not yet "
        "(milkyway.kube.decision_key)"
    ),
    ("milkyway.ebay.com", "applications", "get"): (
        "health reports and notifications read the Application afresh "
        "(milkyway.operator.health.task, milkyway.notify.center)"
    ),
    ("milkyway.ebay.com", "flowruns", "get"): (
        "the flow engine reads a run afresh when the copy it holds is stale "
        "(milkyway.flows.kube_store)"
    ),
    ("milkyway.ebay.com", "flowruns", "delete"): (
        "finished FlowRuns beyond the history limit are pruned (milkyway.operator.reconciler)"
    ),
    ("milkyway.ebay.com", "clusters", "get"): (
        "a Cluster status write that conflicts is retried on a fresh read "
        "(milkyway.operator.registry)"
    ),
    ("rbac.authorization.k8s.io", "rolebindings", "get"): (
        "an approved sudo grant's RoleBinding is created once (milkyway.operator.sudo_grants)"
    ),
    ("rbac.authorization.k8s.io", "rolebindings", "create"): (
        "an approved sudo grant's RoleBinding (milkyway.operator.sudo_grants)"
    ),
    ("rbac.authorization.k8s.io", "rolebindings", "delete"): (
        "an expired sudo grant is removed (milkyway.operator.sudo_grants)"
    ),
    ("rbac.authorization.k8s.io", "clusterroles", "bind"): (
        "the Kubernetes API checks it when a sudo grant binds a Milkyway role"
    ),
}
NOT_EXERCISED_MEMBER: dict[Use, str] = {
    ("", "persistentvolumeclaims", "get"): "objects a pattern creates per member are checked first",
    ("", "persistentvolumeclaims", "patch"): "patterns that create a claim per member",
    ("", "pods", "get"): "objects a pattern creates per member are checked first",
    ("apps", "deployments", "get"): "objects a pattern creates per member are checked first",
    ("", "persistentvolumes", "patch"): "patterns that bring their own PersistentVolumes",
    ("", "persistentvolumes", "delete"): "replace-member and scale-in delete a member's volume",
    ("", "secrets", "get"): "the agents' public keys Secret (milkyway.kube.agent_keys)",
    ("", "secrets", "patch"): "the agents' public keys Secret (milkyway.kube.agent_keys)",
    ("", "secrets", "list"): "release-namespace lists what is left in a namespace it created",
    ("", "secrets", "delete"): "the agent keys go with the namespace's last Application",
    ("", "secrets", "create"): (
        "a type's generated Secrets are created where missing (milkyway.kube.generated_secrets)"
    ),
    ("", "secrets", "update"): (
        "rotate-secret replaces a generated Secret conditionally on its resourceVersion "
        "(milkyway.kube.generated_secrets)"
    ),
    ("", "pods/proxy", "get"): "the disk watch reads the sidecar agents through the pod proxy",
    ("", "pods/proxy", "create"): "agent actions go through the pod proxy",
    ("", "pods/status", "patch"): "a member agent's disk alert becomes a pod condition",
    ("", "events", "create"): "a member agent's disk alert becomes an Event on its pod",
}
"""Rights granted for code paths one provision, scale-out, failover and decommission may
not reach (they depend on timing: a conflict, a schedule), each with the path that needs
it. Whether a run reaches them or not, they stay granted; nothing else may be."""


def _check_least_privilege(usage: Usage) -> None:
    """The operator's roles grant exactly what it used (plus the listed exceptions), in the
    management cluster and in the members."""
    for where, used, rules, exceptions in (
        ("management", usage.management, operator_rules(), NOT_EXERCISED_MANAGEMENT),
        ("member", usage.members, [*cluster_rules(True), *WORKLOAD_RULES], NOT_EXERCISED_MEMBER),
    ):
        allowed = granted(rules)
        assert set(exceptions) <= allowed, f"{where}: exceptions the roles do not grant"
        missing = used - allowed
        unused = allowed - used - set(exceptions)
        assert not missing, f"{where}: used but not granted: {sorted(missing)}"
        assert not unused, f"{where}: granted but never used: {sorted(unused)}"

"""``kubectl exec`` and ``kubectl port-forward`` (and the official Python client's
``stream``) against pods of a simulated cluster.

The runtime here runs a container's commands as host processes (an empty ``enter_argv``)
with the container's environment: it exercises the API server's side of the protocols;
process-backed pods of the simulated kubelet provide the same handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.clusters import SimulatedClusters

from ..conftest import Kubectl

POD_IP = "127.0.0.3"


@dataclass
class HostContainer:
    working_dir: str
    pod_ip: str = POD_IP
    pid: int = field(default_factory=os.getpid)
    env: Mapping[str, str] = field(
        default_factory=lambda: {"PATH": os.environ.get("PATH", ""), "GREETING": "hello"}
    )
    enter_argv: Sequence[str] = ()
    log_path: str = os.devnull
    previous_log_path: str | None = None


@dataclass
class HostRuntime:
    working_dir: str
    process_pods: set[str] = field(default_factory=lambda: {"real"})

    def container(
        self, namespace: str, pod: str, container: str | None = None
    ) -> HostContainer | None:
        return HostContainer(self.working_dir) if pod in self.process_pods else None


def _running_pod(api: ClusterAPI, name: str) -> None:
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "nodeName": "node-1",
                "containers": [{"name": "main", "image": "tool:1"}],
            },
        }
    )
    api.patch(
        "pods",
        name,
        {"status": {"phase": "Running", "podIP": POD_IP}},
        namespace="default",
        subresource="status",
    )


@pytest.fixture
def pods(sim: SimulatedClusters, tmp_path: Path) -> ClusterAPI:
    api = sim["c1"].api
    api.container_runtime = HostRuntime(str(tmp_path))
    _running_pod(api, "real")
    _running_pod(api, "simulated")
    return api


@pytest.fixture
async def tcp_echo() -> AsyncIterator[int]:
    """A TCP server at the pod's address that answers every read with ``echo:<data>``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(b"echo:" + data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, POD_IP, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_exec_runs_the_command_with_the_containers_env_and_exit_code(
    kubectl: Kubectl, pods: ClusterAPI, tmp_path: Path
) -> None:
    ran = await kubectl.run(
        "exec", "real", "--", "sh", "-c", "echo $GREETING; pwd; echo oops >&2; exit 3", check=False
    )
    assert ran.returncode == 3
    assert ran.stdout == f"hello\n{tmp_path}\n"
    assert "oops" in ran.stderr and "command terminated with exit code 3" in ran.stderr

    piped = await kubectl.run("exec", "-i", "real", "--", "sh", "-c", "wc -c", stdin="x" * 5000)
    assert piped.stdout.strip() == "5000"

    missing = await kubectl.run("exec", "real", "--", "no-such-command-here", check=False)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


async def test_exec_reaches_a_server_in_the_pod(
    kubectl: Kubectl, pods: ClusterAPI, tcp_echo: int
) -> None:
    """The ZooKeeper-style four-letter-word check: a shell in the pod talks to its port."""
    script = (
        f"import socket; s=socket.create_connection(('{POD_IP}', {tcp_echo}));"
        "s.sendall(b'mntr'); print(s.recv(100).decode())"
    )
    ran = await kubectl.run("exec", "real", "--", "python3", "-c", script)
    assert ran.stdout.strip() == "echo:mntr"


async def test_exec_into_a_simulated_container_is_a_clear_error(
    kubectl: Kubectl, pods: ClusterAPI
) -> None:
    refused = await kubectl.run("exec", "simulated", "--", "ls", check=False)
    assert refused.returncode != 0
    assert 'container "main" in pod "simulated" runs no process' in refused.stderr
    assert "Traceback" not in refused.stderr
    unknown = await kubectl.run("exec", "ghost", "--", "ls", check=False)
    assert unknown.returncode != 0 and 'pods "ghost" not found' in unknown.stderr
    pods.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "pending", "namespace": "default"},
            "spec": {"containers": [{"name": "main", "image": "tool:1"}]},
        }
    )
    pending = await kubectl.run("exec", "pending", "--", "ls", check=False)
    assert pending.returncode != 0
    assert "pod pending does not have a host assigned" in pending.stderr


async def test_port_forward_carries_bytes_both_ways(
    kubectl: Kubectl, pods: ClusterAPI, tcp_echo: int
) -> None:
    proc = await kubectl.start("port-forward", "pod/real", f":{tcp_echo}")
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert b"Forwarding from 127.0.0.1:" in line, line
        local = int(line.split(b"127.0.0.1:")[1].split()[0])
        for payload in (b"ping", b"x" * 200_000):
            reader, writer = await asyncio.open_connection("127.0.0.1", local)
            writer.write(payload)
            await writer.drain()
            got = b""
            while len(got) < len(payload) + 5:
                chunk = await asyncio.wait_for(reader.read(65536), 30)
                assert chunk, "the forwarded connection closed early"
                got += chunk
            assert got.startswith(b"echo:") and got.replace(b"echo:", b"") == payload
            writer.close()
            await writer.wait_closed()
        assert proc.returncode is None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        await proc.wait()


async def test_port_forward_to_a_closed_port_reports_the_refusal(
    kubectl: Kubectl, pods: ClusterAPI
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind((POD_IP, 0))
        closed = probe.getsockname()[1]
    proc = await kubectl.start("port-forward", "pod/real", f":{closed}")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        local = int(line.split(b"127.0.0.1:")[1].split()[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", local)
        assert await asyncio.wait_for(reader.read(10), 30) == b""
        writer.close()
        err = b""
        while b"connection refused" not in err:
            line = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert line, f"kubectl ended without reporting the refusal: {err!r}"
            err += line
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        await proc.wait()


async def test_official_python_client_stream_exec_and_port_forward(
    sim: SimulatedClusters, pods: ClusterAPI, tcp_echo: int
) -> None:
    from kubernetes import client, config
    from kubernetes.stream import portforward, stream

    def use() -> tuple[str, bytes]:
        api_client = config.new_client_from_config(
            config_file=str(sim.kubeconfig_path), context="c1"
        )
        core = client.CoreV1Api(api_client)
        out = stream(
            core.connect_get_namespaced_pod_exec,
            "real",
            "default",
            command=["sh", "-c", "echo $GREETING from python"],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
        )
        forward = portforward(
            core.connect_get_namespaced_pod_portforward, "real", "default", ports=str(tcp_echo)
        )
        sock = forward.socket(tcp_echo)
        sock.setblocking(True)
        sock.sendall(b"hi")
        got = sock.recv(100)
        sock.close()
        forward.close()
        api_client.close()
        return out, got

    out, got = await asyncio.to_thread(use)
    assert out == "hello from python\n"
    assert got == b"echo:hi"


async def test_exec_and_port_forward_need_create(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('admin-token,admin,1,"system:masters"\nviewer-token,viewer,2,""\n')
    async with SimulatedClusters(
        ["c1"], kubeconfig_path=tmp_path / "kubeconfig", token_file=tokens, rbac=True
    ) as sim:
        api = sim["c1"].api
        api.container_runtime = HostRuntime(str(tmp_path))
        _running_pod(api, "real")
        for kind, name, body in (
            (
                "Role",
                "get-only",
                {
                    "rules": [
                        {
                            "apiGroups": [""],
                            "resources": ["pods", "pods/exec", "pods/portforward"],
                            "verbs": ["get"],
                        }
                    ]
                },
            ),
            (
                "RoleBinding",
                "viewer",
                {
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": "get-only",
                    },
                    "subjects": [{"kind": "User", "name": "viewer"}],
                },
            ),
        ):
            api.create(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": kind,
                    "metadata": {"name": name, "namespace": "default"},
                    **body,
                }
            )
        viewer = Kubectl(sim.kubeconfig_path, "c1", tmp_path / "cache")
        refused = await viewer.run(
            "--token=viewer-token", "exec", "real", "--", "true", check=False
        )
        assert refused.returncode != 0
        assert 'cannot create resource "pods/exec"' in refused.stderr
        forward = await viewer.run(
            "--token=viewer-token", "port-forward", "pod/real", "1234", check=False, limit=60
        )
        assert forward.returncode != 0
        assert 'cannot create resource "pods/portforward"' in forward.stderr


async def test_python_client_tty_stdin_and_resize(sim: SimulatedClusters, pods: ClusterAPI) -> None:
    """The Python client sends stdin and resizes as text frames; a tty gets the size."""
    from kubernetes import client, config
    from kubernetes.stream import stream

    def use() -> tuple[str, int | None]:
        api_client = config.new_client_from_config(
            config_file=str(sim.kubeconfig_path), context="c1"
        )
        core = client.CoreV1Api(api_client)
        ws = stream(
            core.connect_get_namespaced_pod_exec,
            "real",
            "default",
            command=["sh", "-c", "read x; stty size; echo got $x"],
            stdin=True,
            stdout=True,
            stderr=True,
            tty=True,
            _preload_content=False,
        )
        ws.write_channel(4, '{"Width": 100, "Height": 30}')
        ws.write_stdin("hello\n")
        out = ""
        deadline = time.monotonic() + 30
        while ws.is_open() and time.monotonic() < deadline:
            ws.update(timeout=1)
            if ws.peek_stdout():
                out += ws.read_stdout()
        code = ws.returncode
        ws.close()
        api_client.close()
        return out, code

    out, code = await asyncio.to_thread(use)
    assert "30 100" in out and "got hello" in out
    assert code == 0


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if marker.encode() in cmdline.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


async def test_an_exec_session_whose_client_leaves_ends_its_command(
    kubectl: Kubectl, pods: ClusterAPI
) -> None:
    marker = f"exec-session-{os.getpid()}-{time.monotonic_ns()}"
    proc = await kubectl.start("exec", "real", "--", "sh", "-c", f"echo up; sleep 300; : {marker}")
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"up\n"
        assert _processes_with(marker)
    finally:
        proc.kill()
        await proc.wait()
    deadline = time.monotonic() + 30
    while _processes_with(marker):
        assert time.monotonic() < deadline, "the command outlived its exec session"
        await asyncio.sleep(0.1)

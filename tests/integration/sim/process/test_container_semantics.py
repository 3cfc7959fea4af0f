"""Kubernetes container semantics, for real: restarts with back-off, start failures,
init containers, probes, environment, users and graceful termination."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from milkyway.sim.process.container import group_members

from .conftest import ProcessSim, eventually, shell_pod


async def test_a_killed_process_restarts_with_backoff_and_a_growing_count(
    process_sim: ProcessSim,
) -> None:
    process_sim.api().create(shell_pod("crashy", "exec sleep 300"))
    await eventually(lambda: process_sim.status("crashy").get("ready"), what="Ready")
    runtime = process_sim.runtime()
    restarts = []
    for expected in (1, 2, 3):
        handle = runtime.container("default", "crashy")
        assert handle is not None and handle.pid is not None
        os.kill(handle.pid, signal.SIGKILL)
        killed = time.monotonic()
        status = await eventually(
            lambda n=expected: (
                process_sim.status("crashy").get("restartCount") == n
                and process_sim.status("crashy").get("ready")
                and process_sim.status("crashy")
            ),
            what=f"restart {expected}",
        )
        restarts.append(time.monotonic() - killed)
        last = status["lastState"]["terminated"]
        assert last["exitCode"] == 137 and last["reason"] == "Error" and last["signal"] == 9
    # back-off doubles: 0.5 s, 1 s, 2 s (the base is 0.5 s in these tests)
    assert restarts[2] >= 2.0 > restarts[0]
    handle = runtime.container("default", "crashy")
    assert handle is not None and handle.previous_log_path is not None
    reasons = {e["reason"] for e in process_sim.events("crashy")}
    assert "BackOff" in reasons


async def test_a_command_that_cannot_start_is_run_container_error_then_crash_loop(
    process_sim: ProcessSim,
) -> None:
    pod = shell_pod("broken", "")
    pod["spec"]["containers"][0]["command"] = ["/no/such/program"]
    process_sim.api().create(pod)
    first = await eventually(
        lambda: (process_sim.status("broken").get("state") or {}).get("waiting"),
        what="a waiting state",
    )
    assert first["reason"] == "RunContainerError"
    assert "/no/such/program" in first["message"]
    looping = await eventually(
        lambda: (
            (process_sim.status("broken").get("state") or {}).get("waiting", {}).get("reason")
            == "CrashLoopBackOff"
            and process_sim.status("broken")
        ),
        what="CrashLoopBackOff",
    )
    assert looping["lastState"]["terminated"]["reason"] == "StartError"
    assert looping["lastState"]["terminated"]["exitCode"] == 128
    assert process_sim.pod("broken")["status"]["phase"] == "Pending"


async def test_exiting_container_respects_restart_policy_never(process_sim: ProcessSim) -> None:
    process_sim.api().create(shell_pod("job", "exit 3", restartPolicy="Never"))
    await eventually(
        lambda: process_sim.pod("job").get("status", {}).get("phase") == "Failed",
        what="phase Failed",
    )
    terminated = process_sim.status("job")["state"]["terminated"]
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    assert process_sim.status("job")["restartCount"] == 0


async def test_init_containers_run_in_order_before_the_containers(
    process_sim: ProcessSim,
) -> None:
    pod = shell_pod(
        "ordered",
        "cat /work/order; exec sleep 300",
        container={"volumeMounts": [{"name": "work", "mountPath": "/work"}]},
        volumes=[{"name": "work", "emptyDir": {}}],
    )
    pod["spec"]["initContainers"] = [
        {
            "name": f"init-{i}",
            "image": "example.com/shell:1",
            "args": [f"echo {i} >> /work/order"],
            "volumeMounts": [{"name": "work", "mountPath": "/work"}],
        }
        for i in (1, 2)
    ]
    process_sim.api().create(pod)
    await eventually(lambda: process_sim.status("ordered").get("ready"), what="Ready")
    handle = process_sim.runtime().container("default", "ordered")
    assert handle is not None
    await eventually(lambda: handle.log_path.read_text() == "1\n2\n", what="ordered output")
    inits = process_sim.pod("ordered")["status"]["initContainerStatuses"]
    assert [s["state"]["terminated"]["reason"] for s in inits] == ["Completed", "Completed"]


async def test_liveness_failure_restarts_and_readiness_gates_ready(
    process_sim: ProcessSim,
) -> None:
    script = "touch /tmp/healthy; exec sleep 300"
    pod = shell_pod(
        "probed",
        script,
        container={
            "readinessProbe": {
                "exec": {"command": ["test", "-f", "/tmp/ready"]},
                "periodSeconds": 1,
            },
            "livenessProbe": {
                "exec": {"command": ["test", "-f", "/tmp/healthy"]},
                "periodSeconds": 1,
                "failureThreshold": 2,
            },
        },
        terminationGracePeriodSeconds=1,
    )
    process_sim.api().create(pod)
    handle = await eventually(
        lambda: (h := process_sim.runtime().container("default", "probed")) and h.pid and h,
        what="running",
    )
    await asyncio.sleep(1.5)
    assert not process_sim.status("probed").get("ready"), "Ready without its readiness file"
    await _inside(handle.enter_argv, "touch", "/tmp/ready")
    await eventually(lambda: process_sim.status("probed").get("ready"), what="Ready")
    await _inside(handle.enter_argv, "rm", "/tmp/healthy")
    status = await eventually(
        lambda: (
            process_sim.status("probed").get("restartCount") == 1 and process_sim.status("probed")
        ),
        what="a liveness restart",
    )
    assert "liveness probe" in status["lastState"]["terminated"].get("message", "")
    assert any(e["reason"] == "Unhealthy" for e in process_sim.events("probed"))


async def test_tcp_and_http_probes_reach_the_pod_address(process_sim: ProcessSim) -> None:
    pod = shell_pod(
        "web",
        "exec python3 -m http.server 8080 --directory /tmp",
        container={
            "ports": [{"name": "http", "containerPort": 8080}],
            "startupProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
            "readinessProbe": {"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1},
        },
    )
    process_sim.api().create(pod)
    await eventually(lambda: process_sim.status("web").get("ready"), what="Ready")
    ip = process_sim.pod("web")["status"]["podIP"]
    reader, writer = await asyncio.open_connection(ip, 8080)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.0 200")


async def test_environment_user_and_working_directory(process_sim: ProcessSim) -> None:
    api = process_sim.api()
    api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "default"},
            "data": {"mode": "fast"},
        }
    )
    pod = shell_pod(
        "envy",
        'echo "$POD_NAME $POD_IP $MODE $GREETING $(id -u):$(id -g) $(pwd)"; exec sleep 300',
        container={
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {
                    "name": "MODE",
                    "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}},
                },
                {"name": "GREETING", "value": "hello-$(POD_NAME)"},
            ],
            "workingDir": "/tmp",
        },
        securityContext={"runAsUser": 1234, "runAsGroup": 2345},
    )
    api.create(pod)
    await eventually(lambda: process_sim.status("envy").get("ready"), what="Ready")
    handle = process_sim.runtime().container("default", "envy")
    assert handle is not None
    ip = handle.pod_ip
    line = await eventually(lambda: handle.log_path.read_text().strip(), what="output")
    assert line == f"envy {ip} fast hello-envy 1234:2345 /tmp"
    assert handle.env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"


async def test_missing_config_map_is_create_container_config_error(
    process_sim: ProcessSim,
) -> None:
    pod = shell_pod(
        "unconfigured",
        "exec sleep 300",
        container={
            "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]
        },
    )
    process_sim.api().create(pod)
    waiting = await eventually(
        lambda: (
            (process_sim.status("unconfigured").get("state") or {}).get("waiting", {}).get("reason")
            == "CreateContainerConfigError"
            and process_sim.status("unconfigured")["state"]["waiting"]
        ),
        what="CreateContainerConfigError",
    )
    assert waiting["message"] == 'configmap "absent" not found'


async def test_graceful_termination_sigterm_then_sigkill_after_grace(
    process_sim: ProcessSim, tmp_path: Path
) -> None:
    api = process_sim.api()
    out = tmp_path / "out"
    out.mkdir()
    api.create(
        shell_pod(
            "polite",
            "trap 'echo got TERM > /out/marker; exit 0' TERM; sleep 300 & wait",
            container={"volumeMounts": [{"name": "out", "mountPath": "/out"}]},
            volumes=[{"name": "out", "hostPath": {"path": str(out)}}],
        )
    )
    api.create(
        shell_pod("stubborn", "trap '' TERM; sleep 300 & wait", terminationGracePeriodSeconds=2)
    )
    for name in ("polite", "stubborn"):
        await eventually(lambda n=name: process_sim.status(n).get("ready"), what=f"{name} Ready")
    polite = process_sim.runtime().container("default", "polite")
    stubborn = process_sim.runtime().container("default", "stubborn")
    assert polite is not None and stubborn is not None and stubborn.pid is not None
    for pid in (polite.pid, stubborn.pid):
        # the shells have set their traps once their ``sleep`` runs
        await eventually(lambda p=pid: len(group_members(p)) == 2, what="traps set")
    started = time.monotonic()
    api.delete("v1/pods", "polite", namespace="default")
    api.delete("v1/pods", "stubborn", namespace="default")
    # When the stubborn shell died, not whether it still runs at some later look: on a
    # busy machine any later look may already be past its grace period.
    died = await eventually(
        lambda: not group_members(stubborn.pid) and time.monotonic(), what="stubborn killed"
    )
    assert died - started >= 2.0, f"SIGKILL came {died - started:.2f}s after the delete, not 2s"
    await eventually(lambda: not process_sim.pod("polite"), what="polite gone")
    assert (out / "marker").read_text() == "got TERM\n"
    await eventually(lambda: not process_sim.pod("stubborn"), what="stubborn gone")


async def _inside(enter: list[str], *argv: str) -> None:
    process = await asyncio.create_subprocess_exec(*enter, *argv)
    assert await process.wait() == 0


async def test_read_only_root_filesystem_keeps_volumes_writable(process_sim: ProcessSim) -> None:
    script = (
        "touch /rootfile 2>/dev/null && echo root-writable || echo root-read-only; "
        "touch /scratch/f && echo volume-writable; exec sleep 300"
    )
    process_sim.api().create(
        shell_pod(
            "readonly",
            script,
            container={
                "securityContext": {"readOnlyRootFilesystem": True},
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
            },
            volumes=[{"name": "scratch", "emptyDir": {}}],
        )
    )
    handle = await eventually(
        lambda: (h := process_sim.runtime().container("default", "readonly")) and h.pid and h,
        what="running",
    )
    output = await eventually(
        lambda: "volume-writable" in handle.log_path.read_text() and handle.log_path.read_text(),
        what="the script's output",
    )
    assert output == "root-read-only\nvolume-writable\n"


async def test_a_failed_init_container_fails_a_never_restarting_pod(
    process_sim: ProcessSim,
) -> None:
    pod = shell_pod("never", "echo main ran; exec sleep 300", restartPolicy="Never")
    pod["spec"]["initContainers"] = [
        {"name": "setup", "image": "example.com/shell:1", "args": ["exit 4"]}
    ]
    process_sim.api().create(pod)
    await eventually(
        lambda: process_sim.pod("never").get("status", {}).get("phase") == "Failed",
        what="phase Failed",
    )
    init = process_sim.pod("never")["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["exitCode"] == 4
    handle = process_sim.runtime().container("default", "never")
    assert handle is not None and handle.pid is None, "the main container started"

"""Volumes as real files at their mount paths, kept up to date like a kubelet keeps them;
claims' directories outliving pods; lost nodes and failed disks reaching the processes."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

from milkyway.sim.process.container import group_members

from .conftest import ProcessSim, eventually, shell_pod

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _is_link(path: Path) -> bool:
    return path.is_symlink()


async def _read(enter: list[str], path: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *enter, "cat", path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


def _objects(api: Any) -> None:
    api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "app", "namespace": "default"},
            "data": {"app.conf": "level=1\n"},
        }
    )
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "default"},
            "data": {"password": base64.b64encode(b"s3cret").decode()},
        }
    )


async def _root_ca(process_sim: ProcessSim) -> None:
    """The control plane publishes the cluster's CA as ``kube-root-ca.crt`` in every
    namespace, as a real one does; the projected service-account volume reads it."""
    api = process_sim.api()

    def published() -> bool:
        items = api.list("v1/configmaps", namespace="default")["items"]
        return any(i["metadata"]["name"] == "kube-root-ca.crt" for i in items)

    await eventually(published, what="kube-root-ca.crt published in default")


def _volume_pod() -> dict[str, Any]:
    mounts = [
        {"name": "conf", "mountPath": "/etc/app", "readOnly": True},
        {"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
        {"name": "info", "mountPath": "/etc/podinfo"},
        {"name": "token", "mountPath": SA_DIR, "readOnly": True},
        {"name": "scratch", "mountPath": "/scratch"},
    ]
    return shell_pod(
        "vols",
        "exec sleep 300",
        container={"volumeMounts": mounts},
        volumes=[
            {"name": "conf", "configMap": {"name": "app"}},
            {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
            {
                "name": "info",
                "downwardAPI": {
                    "items": [
                        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    ]
                },
            },
            {
                "name": "token",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "path": "namespace",
                                        "fieldRef": {"fieldPath": "metadata.namespace"},
                                    }
                                ]
                            }
                        },
                    ]
                },
            },
            {"name": "scratch", "emptyDir": {}},
        ],
    )


async def test_volumes_are_files_at_their_mount_paths(process_sim: ProcessSim) -> None:
    api = process_sim.api()
    _objects(api)
    await _root_ca(process_sim)
    api.create(_volume_pod())
    await eventually(lambda: process_sim.status("vols").get("ready"), what="Ready")
    handle = process_sim.runtime().container("default", "vols")
    assert handle is not None
    enter = handle.enter_argv
    assert await _read(enter, "/etc/app/app.conf") == "level=1\n"
    assert await _read(enter, "/etc/creds/password") == "s3cret"
    assert await _read(enter, "/etc/podinfo/name") == "vols"
    assert await _read(enter, "/etc/podinfo/labels") == 'app="vols"'
    assert await _read(enter, f"{SA_DIR}/namespace") == "default"
    assert (await _read(enter, f"{SA_DIR}/ca.crt")).startswith("-----BEGIN CERTIFICATE")
    token = await _read(enter, f"{SA_DIR}/token")
    user = process_sim.sim.authenticator.authenticate(f"Bearer {token}")
    assert user is not None and user.name == "system:serviceaccount:default:default"
    assert (await _read(enter, "/etc/app/..data/app.conf")) == "level=1\n"


async def test_config_map_changes_reach_the_files_by_an_atomic_swap(
    process_sim: ProcessSim,
) -> None:
    api = process_sim.api()
    _objects(api)
    await _root_ca(process_sim)
    api.create(_volume_pod())
    await eventually(lambda: process_sim.status("vols").get("ready"), what="Ready")
    handle = process_sim.runtime().container("default", "vols")
    assert handle is not None
    before = await _read(handle.enter_argv, "/etc/app/..data/app.conf")
    api.patch("v1/configmaps", "app", {"data": {"app.conf": "level=2\n"}}, namespace="default")
    folder = process_sim.runtime().pods[("default", "vols")].volumes["conf"]
    old_target = os.readlink(folder / "..data")
    await eventually(
        lambda: (folder / "app.conf").read_text() == "level=2\n", what="the new content"
    )
    assert os.readlink(folder / "..data") != old_target
    assert _is_link(folder / "app.conf")
    assert before == "level=1\n"
    assert await _read(handle.enter_argv, "/etc/app/app.conf") == "level=2\n"


async def test_claim_directory_outlives_the_pod_and_goes_to_its_replacement(
    process_sim: ProcessSim,
) -> None:
    api = process_sim.api()
    api.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "default"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    script = "cat /data/note 2>/dev/null; echo $HOSTNAME >> /data/note; echo written; sleep 300"
    for name in ("first", "second"):
        api.create(
            shell_pod(
                name,
                script,
                container={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            )
        )
        await eventually(lambda n=name: process_sim.status(n).get("ready"), what=f"{name} Ready")
        handle = process_sim.runtime().container("default", name)
        assert handle is not None
        output = await eventually(
            lambda h=handle: (
                h.log_path.exists()
                and "written" in h.log_path.read_text()
                and h.log_path.read_text()
            ),
            what=f"{name} to write its note",
        )
        if name == "first":
            assert output == "written\n", "the first pod found a note already"
            api.delete("v1/pods", "first", namespace="default")
            await eventually(lambda: not process_sim.pod("first"), what="first gone")
        else:
            assert output == "first\nwritten\n", "the second pod did not find the first's note"
    assert await _read(handle.enter_argv, "/data/note") == "first\nsecond\n"


async def test_lose_node_kills_its_processes(process_sim: ProcessSim) -> None:
    api = process_sim.api()
    api.create(shell_pod("victim", "sleep 300 & exec sleep 300"))
    await eventually(lambda: process_sim.status("victim").get("ready"), what="Ready")
    handle = process_sim.runtime().container("default", "victim")
    assert handle is not None and handle.pid is not None
    pid = handle.pid
    node = process_sim.pod("victim")["spec"]["nodeName"]
    await eventually(lambda: len(group_members(pid)) == 2, what="both processes")
    fault = await process_sim.ctl.faults.lose_node("east", node)
    await eventually(lambda: group_members(pid) == [], what="every process of the pod gone")
    await process_sim.ctl.faults.lift(fault.id)
    status = await eventually(
        lambda: (
            process_sim.status("victim").get("restartCount") == 1
            and process_sim.status("victim").get("ready")
            and process_sim.status("victim")
        ),
        what="the container back after the node returned",
    )
    assert status["lastState"]["terminated"]["exitCode"] == 137


async def test_fail_disk_fails_the_volume_for_the_process(process_sim: ProcessSim) -> None:
    api = process_sim.api()
    api.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "disk", "namespace": "default"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    api.create(
        shell_pod(
            "writer",
            "while echo x >> /data/log; do sleep 0.1; done; echo write failed; sleep 300",
            container={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "disk"}}],
            securityContext={"runAsUser": 1000, "fsGroup": 1000},
        )
    )
    await eventually(lambda: process_sim.status("writer").get("ready"), what="Ready")
    handle = process_sim.runtime().container("default", "writer")
    assert handle is not None and handle.pid is not None
    pid = handle.pid
    claim = api.get("v1/persistentvolumeclaims", "disk", namespace="default")
    volume = claim["spec"]["volumeName"]
    folder = process_sim.runtime().volume_dir(volume)
    await process_sim.ctl.faults.fail_disk("east", volume=volume)
    await eventually(
        lambda: process_sim.pod("writer").get("status", {}).get("phase") == "Failed",
        what="the pod Failed",
    )
    await eventually(lambda: group_members(pid) == [], what="the writer's processes gone")
    assert (folder.stat().st_mode & 0o777) == 0
    await process_sim.ctl.faults.lift_all()
    assert (folder.stat().st_mode & 0o777) != 0


IN_CLUSTER = """
import json, os, ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
ns, name = open(f"{sa}/namespace").read(), os.environ["HOSTNAME"]
request = urllib.request.Request(
    f"https://{host}:{port}/api/v1/namespaces/{ns}/pods/{name}",
    headers={"Authorization": "Bearer " + open(f"{sa}/token").read()},
)
context = ssl.create_default_context(cafile=f"{sa}/ca.crt")
pod = json.load(urllib.request.urlopen(request, context=context))
print("in-cluster read", pod["metadata"]["name"], pod["status"]["podIP"], flush=True)
"""


async def test_in_cluster_configuration_reaches_the_api_server(process_sim: ProcessSim) -> None:
    api = process_sim.api()
    await _root_ca(process_sim)
    pod = _volume_pod()
    pod["metadata"]["name"] = "incluster"
    pod["spec"]["containers"][0]["args"] = [f"python3 -c '{IN_CLUSTER}'; exec sleep 300"]
    api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "app", "namespace": "default"},
            "data": {"app.conf": "x"},
        }
    )
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "default"},
            "data": {},
        }
    )
    api.create(pod)
    handle = await eventually(
        lambda: (h := process_sim.runtime().container("default", "incluster")) and h.pid and h,
        what="running",
    )
    line = await eventually(
        lambda: handle.log_path.read_text().strip(), what="the in-cluster client's output"
    )
    assert line == f"in-cluster read incluster {handle.pod_ip}"

"""The process runtime of one simulated cluster's kubelets.

A pod whose images are all mapped (see :mod:`milkyway.sim.process.images`) runs here as
real processes; every other pod stays with the simulated (KWOK-style) stages. The
kubelet hands each such pod to :meth:`ProcessRuntime.advance` on every reconcile and
renders the pod status from what this runtime records: the pod's own loopback address,
init containers run in order, containers started, restarted with back-off, probed, and
ended by process group. :meth:`ProcessRuntime.container` gives the rest of the simulator
(logs, exec, port-forward, proxy) a :class:`ContainerHandle` per container.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import re
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milkyway.sim.controllers.actions import Action, Event, Requeue
from milkyway.sim.controllers.objects import (
    Obj,
    name_of,
    namespace_of,
    now_rfc3339,
    object_ref,
    parse_quantity,
    uid_of,
)
from milkyway.sim.controllers.podstatus import ContainerRuntime, PodRuntime
from milkyway.sim.process import preload, sized
from milkyway.sim.process.container import ContainerProcess, group_alive, signal_group
from milkyway.sim.process.handle import ContainerHandle
from milkyway.sim.process.images import ImageMap, ImageRule
from milkyway.sim.process.network import PodName, PodNetwork, write_in_place
from milkyway.sim.process.probes import run_probe
from milkyway.sim.process.sandbox import Mount, SandboxSpec, enter_argv, launch_argv, prepare_upper
from milkyway.sim.process.volumes import (
    VolumeError,
    VolumeSources,
    field_value,
    projected_files,
    resource_value,
    write_atomic,
)

log = logging.getLogger(__name__)

SOURCE = "kubelet"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHIM_PATH = "/usr/local/lib/milkyway-sim/bindpod.so"
"""Where every container finds the wildcard-listen shim (see :mod:`.preload`)."""
KILL_WAIT = 5.0
"""Longest :meth:`ProcessRuntime.stop` waits for SIGKILLed processes to be gone."""
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ContainerConfigError(Exception):
    """The container's configuration cannot be built (``CreateContainerConfigError``)."""


@dataclass(frozen=True)
class ClusterFacts:
    """What pods of one cluster learn about it: its name and its API server."""

    name: str
    api_host: str = "127.0.0.1"
    api_port: int = 0
    ca_pem: str = ""


@dataclass
class PodBox:
    """Everything the runtime holds for one process-backed pod."""

    namespace: str
    name: str
    uid: str
    node: str
    ip: str
    folder: Path
    hostname: str
    subdomain: str
    init: list[ContainerProcess] = field(default_factory=list)
    main: list[ContainerProcess] = field(default_factory=list)
    volumes: dict[str, Path] = field(default_factory=dict)
    refreshable: set[str] = field(default_factory=set)
    mounted: bool = False
    mount_warned: str = ""
    failed: bool = False
    terminating: bool = False

    @property
    def hosts_file(self) -> Path:
        return self.folder / "hosts"

    def all(self) -> list[ContainerProcess]:
        return [*self.init, *self.main]


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names are replaced, ``$$`` escapes."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR_REF.sub(sub, value)


class ProcessRuntime:
    """Runs the process-backed pods of one cluster.

    ``images``: which images run and how. ``network``: pod addresses and names, shared
    by every cluster of one simulator. ``state_dir``: pod folders, logs and the
    directories of PersistentVolumes (kept across pods). ``token``: mints a bearer token
    for a service account (namespace, name) for projected token volumes.
    """

    def __init__(
        self,
        cluster: ClusterFacts,
        images: ImageMap,
        network: PodNetwork,
        state_dir: Path,
        *,
        token: Callable[[str, str], str] | None = None,
        crash_backoff: float = 10.0,
        volume_sync_seconds: float = 5.0,
        sized_volumes: bool = False,
    ) -> None:
        self.cluster = cluster
        self.images = images
        self.network = network
        self.state_dir = Path(state_dir)
        self.token = token or (lambda _ns, _sa: "")
        self.crash_backoff = crash_backoff
        self.volume_sync_seconds = volume_sync_seconds
        self.pods: dict[tuple[str, str], PodBox] = {}
        self.started_groups: set[int] = set()
        """Every process group this runtime started (for leak checks)."""
        self._api: Any = None
        self._enqueue: Callable[[str, str], None] = lambda _ns, _name: None
        self._sync_task: asyncio.Task[None] | None = None
        self._shim: Path | None = None
        self._failed_volumes: dict[str, int] = {}
        self.sized_volumes = sized_volumes
        """PersistentVolumes are filesystems of their capacity (see :mod:`.sized`)."""
        self._sized: set[Path] = set()
        network.api_hosts[cluster.name] = cluster.api_host

    # ------------------------------------------------------------------ wiring

    def bind(self, api: Any, enqueue: Callable[[str, str], None]) -> None:
        """Attach to the cluster's API (reads of ConfigMaps, Secrets, PVs) and kubelet."""
        self._api = api
        self._enqueue = enqueue
        self.state_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self._kill_started)
        if self.volume_sync_seconds > 0:
            self._sync_task = asyncio.get_running_loop().create_task(
                self._sync_volumes(), name=f"process-volumes:{self.cluster.name}"
            )

    def runs(self, pod: Obj) -> bool:
        """Whether ``pod`` runs as processes: every image of it is mapped."""
        spec = pod.get("spec") or {}
        images = [
            c.get("image", "")
            for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
        ]
        return self.images.runs(images)

    def container(
        self, namespace: str, pod: str, container: str | None = None
    ) -> ContainerHandle | None:
        """The handle of ``container`` (default: the pod's first container), or None when
        the pod does not run as processes here or has no such container."""
        box = self.pods.get((namespace, pod))
        if box is None:
            return None
        candidates = box.main + box.init
        chosen = (
            candidates[0]
            if container is None and box.main
            else next((c for c in candidates if c.name == container), None)
        )
        if chosen is None:
            return None
        pid = chosen.pid if chosen.started else None
        log_path = (
            chosen.instance.log_path if chosen.instance is not None else chosen.logs / "0.log"
        )
        return ContainerHandle(
            namespace=namespace,
            pod=pod,
            container=chosen.name,
            pod_ip=box.ip,
            pid=pid,
            env=dict(chosen.env),
            working_dir=chosen.working_dir,
            enter_argv=enter_argv(pid) if pid is not None else [],
            log_path=log_path,
            previous_log_path=chosen.previous_log,
            restart_count=chosen.status.restart_count,
        )

    # ------------------------------------------------------------------ the pod lifecycle

    def advance(self, pod: Obj, rt: PodRuntime, actions: list[Action]) -> None:
        """Move ``pod`` on: volumes, init containers, containers, restarts; fills ``rt``."""
        key = (namespace_of(pod), name_of(pod))
        box = self.pods.get(key)
        if box is not None and box.uid != uid_of(pod):
            self._destroy(box)
            box = None
        if box is None:
            box = self._create(pod, rt)
        rt.pod_ip = box.ip
        if box.failed:
            return
        if not box.mounted:
            try:
                self._mount_volumes(box, pod)
            except VolumeError as err:
                message = f"MountVolume.SetUp failed: {err}"
                if box.mount_warned != message:
                    box.mount_warned = message
                    actions.append(
                        Event(object_ref(pod), "Warning", "FailedMount", message, SOURCE)
                    )
                actions.append(Requeue(1.0))
                return
            box.mounted = True
            self.network.register(
                PodName(
                    self.cluster.name, box.namespace, box.name, box.ip, box.hostname, box.subdomain
                ),
                box.hosts_file,
            )
        now = time.monotonic()
        waits: list[float] = []
        for c in box.init:
            if not c.done:
                self._drive(box, pod, c, now, actions, waits)
            if c.done and (c.status.terminated or {}).get("exitCode", 0) != 0:
                rt.phase = "Failed"
                rt.reason = "InitContainerFailed"
                return
            if not c.done:
                rt.phase = "Pending"
                for m in box.main:
                    m.status.waiting_reason = "PodInitializing"
                if waits:
                    actions.append(Requeue(min(waits)))
                return
        if box.terminating:
            return
        for c in box.main:
            self._drive(box, pod, c, now, actions, waits)
        if all(c.done for c in box.main):
            codes = [(c.status.terminated or {}).get("exitCode", 1) for c in box.main]
            rt.phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
        elif any(c.instance is not None for c in box.main):
            rt.phase = "Running"
        if waits:
            actions.append(Requeue(min(waits)))

    def _create(self, pod: Obj, rt: PodRuntime) -> PodBox:
        ns, name = namespace_of(pod), name_of(pod)
        spec = pod.get("spec") or {}
        folder = self.state_dir / "pods" / f"{ns}_{name}_{uid_of(pod)[:8]}"
        folder.mkdir(parents=True, exist_ok=True)
        box = PodBox(
            namespace=ns,
            name=name,
            uid=uid_of(pod),
            node=spec.get("nodeName", ""),
            ip=self.network.allocate((self.cluster.name, ns, name)),
            folder=folder,
            hostname=spec.get("hostname") or name,
            subdomain=spec.get("subdomain") or "",
        )
        write_in_place(box.hosts_file, "")
        statuses = {c.name: c for c in rt.containers}
        init_statuses = {c.name: c for c in rt.init_containers}
        for c in spec.get("initContainers") or []:
            status = init_statuses.get(c.get("name", "")) or ContainerRuntime(
                c["name"], c.get("image", "")
            )
            box.init.append(ContainerProcess(c, status, folder / "logs" / c["name"], init=True))
        for c in spec.get("containers") or []:
            status = statuses.get(c.get("name", "")) or ContainerRuntime(
                c["name"], c.get("image", "")
            )
            box.main.append(ContainerProcess(c, status, folder / "logs" / c["name"]))
        self.pods[(ns, name)] = box
        return box

    def _drive(
        self,
        box: PodBox,
        pod: Obj,
        c: ContainerProcess,
        now: float,
        actions: list[Action],
        waits: list[float],
    ) -> None:
        status = c.status
        inst = c.instance
        code = c.exit_code()
        if inst is not None and code is not None and not inst.handled:
            inst.handled = True
            self._exited(box, pod, c, code, now, actions)
        if c.done or box.terminating:
            return
        if c.running:
            ready = c.started and c.ready and c.started_probe_ok
            if status.ready != ready:
                status.ready = ready
            return
        if now < c.next_start:
            waits.append(c.next_start - now)
            return
        self._start(box, pod, c, actions, waits)

    def _restart_policy(self, pod: Obj, c: ContainerProcess) -> str:
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        if c.init:
            return "Never" if policy == "Never" else "OnFailure"
        return policy

    def _exited(
        self,
        box: PodBox,
        pod: Obj,
        c: ContainerProcess,
        code: int,
        now: float,
        actions: list[Action],
    ) -> None:
        inst = c.instance
        assert inst is not None
        c.cancel_probes()
        c.ready = False
        c.started_probe_ok = False
        c.status.ready = False
        exit_code = 128 - code if code < 0 else code
        reason = "Completed" if exit_code == 0 else "Error"
        terminated: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": inst.started_at,
            "finishedAt": now_rfc3339(),
            "containerID": f"sim://{c.name}-{c.status.restart_count}",
        }
        if code < 0:
            terminated["signal"] = -code
        if inst.reason:
            terminated["message"] = inst.reason
        start_error = self._start_error(c, exit_code, now - inst.started)
        if start_error:
            terminated.update({"reason": "StartError", "exitCode": 128, "message": start_error})
        if box.terminating:
            c.status.terminated = terminated
            return
        policy = self._restart_policy(pod, c)
        restart = policy == "Always" or (policy == "OnFailure" and exit_code != 0)
        if not restart:
            c.status.terminated = terminated
            c.status.waiting_reason = ""
            c.done = True
            return
        if now - inst.started > self.crash_backoff * 60:
            c.failures = 0
        c.failures += 1
        delay = c.backoff(self.crash_backoff)
        c.next_start = now + delay
        c.status.last_terminated = terminated
        c.status.terminated = None
        c.status.restart_count += 1
        if start_error:
            c.status.waiting_reason = "RunContainerError"
            c.status.waiting_message = start_error
        else:
            c.status.waiting_reason = "CrashLoopBackOff"
            c.status.waiting_message = (
                f"back-off {delay:g}s restarting failed container={c.name} "
                f"pod={box.name}_{box.namespace}({box.uid})"
            )
        actions.append(
            Event(
                object_ref(pod),
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {c.name} in pod {box.name}_{box.namespace}",
                SOURCE,
            )
        )

    def _start_error(self, c: ContainerProcess, exit_code: int, ran: float) -> str:
        """The runtime's words when the sandbox could not exec the command (exit 126/127
        from ``env`` within a moment of starting), else ''."""
        if exit_code not in (126, 127) or ran > 5 or c.instance is None:
            return ""
        try:
            tail = c.instance.log_path.read_text(errors="replace").strip().splitlines()[-1:]
        except OSError:
            return ""
        if tail and tail[0].startswith(("env: ", "chroot: ", "setpriv: ")):
            return f"failed to start container process: {tail[0]}"
        return ""

    def _start(
        self,
        box: PodBox,
        pod: Obj,
        c: ContainerProcess,
        actions: list[Action],
        waits: list[float],
    ) -> None:
        ref = object_ref(pod)
        try:
            argv, env, rule = self._container_config(box, pod, c)
            problem = self._resolve(argv, env, rule)
        except ContainerConfigError as err:
            c.status.waiting_reason = "CreateContainerConfigError"
            c.status.waiting_message = str(err)
            actions.append(Event(ref, "Warning", "Failed", f"Error: {err}", SOURCE))
            waits.append(max(self.crash_backoff, 1.0))
            c.next_start = time.monotonic() + max(self.crash_backoff, 1.0)
            return
        if problem:
            message = (
                "failed to create containerd task: failed to create shim task: OCI runtime "
                f"create failed: runc create failed: unable to start container process: {problem}"
            )
            c.failures += 1
            delay = c.backoff(self.crash_backoff)
            c.next_start = time.monotonic() + delay
            c.status.restart_count += 1 if c.status.started_at else 0
            c.status.last_terminated = {
                "exitCode": 128,
                "reason": "StartError",
                "message": message,
                "startedAt": "1970-01-01T00:00:00Z",
                "finishedAt": now_rfc3339(),
            }
            c.status.started_at = c.status.started_at or now_rfc3339()
            c.status.waiting_reason = "RunContainerError" if c.failures == 1 else "CrashLoopBackOff"
            c.status.waiting_message = (
                message
                if c.failures == 1
                else (
                    f"back-off {delay:g}s restarting failed container={c.name} "
                    f"pod={box.name}_{box.namespace}({box.uid})"
                )
            )
            actions.append(Event(ref, "Warning", "Failed", f"Error: {message}", SOURCE))
            waits.append(delay)
            return
        c.env = env
        c.working_dir = c.spec.get("workingDir") or None
        try:
            sandbox = self._sandbox(box, pod, c, argv, env, rule)
            prepare_upper(sandbox)
            c.start(
                launch_argv(sandbox, box.hosts_file), lambda: self._enqueue(box.namespace, box.name)
            )
        except (OSError, preload.PreloadError) as err:
            c.status.waiting_reason = "RunContainerError"
            c.status.waiting_message = f"failed to start container process: {err}"
            c.failures += 1
            c.next_start = time.monotonic() + c.backoff(self.crash_backoff)
            waits.append(c.backoff(self.crash_backoff))
            return
        assert c.instance is not None
        self.started_groups.add(c.instance.process.pid)
        c.status.started_at = c.instance.started_at
        c.status.waiting_reason = ""
        c.status.waiting_message = ""
        c.status.terminated = None
        c.status.ready = False
        has_startup = bool(c.spec.get("startupProbe")) and not c.init
        c.started_probe_ok = not has_startup
        c.ready = not c.spec.get("readinessProbe") or c.init
        actions.append(Event(ref, "Normal", "Started", f"Started container {c.name}", SOURCE))
        if not c.init and any(
            c.spec.get(p) for p in ("startupProbe", "readinessProbe", "livenessProbe")
        ):
            c.probe_task = asyncio.get_running_loop().create_task(
                self._probe(box, pod, c, c.instance), name=f"probe:{box.name}/{c.name}"
            )

    # ------------------------------------------------------------------ container config

    def _rule(self, c: ContainerProcess) -> ImageRule:
        rule = self.images.rule_for(str(c.spec.get("image", "")))
        if rule is None:
            raise ContainerConfigError(f'image "{c.spec.get("image")}" is not mapped to a command')
        return rule

    def _container_config(
        self, box: PodBox, pod: Obj, c: ContainerProcess
    ) -> tuple[list[str], dict[str, str], ImageRule]:
        rule = self._rule(c)
        env: dict[str, str] = {
            "PATH": DEFAULT_PATH,
            "HOSTNAME": box.hostname,
            **dict(rule.env),
        }
        if self.cluster.api_port:
            port = str(self.cluster.api_port)
            host = self.cluster.api_host
            env.update(
                {
                    "KUBERNETES_SERVICE_HOST": host,
                    "KUBERNETES_SERVICE_PORT": port,
                    "KUBERNETES_SERVICE_PORT_HTTPS": port,
                    "KUBERNETES_PORT": f"tcp://{host}:{port}",
                    "KUBERNETES_PORT_443_TCP": f"tcp://{host}:{port}",
                    "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
                    "KUBERNETES_PORT_443_TCP_PORT": port,
                    "KUBERNETES_PORT_443_TCP_ADDR": host,
                }
            )
        for source in c.spec.get("envFrom") or []:
            env.update(self._env_from(box.namespace, source))
        for item in c.spec.get("env") or []:
            name = item.get("name", "")
            if "valueFrom" in item:
                value = self._value_from(pod, box, item["valueFrom"])
                if value is None:
                    continue
                env[name] = value
            else:
                env[name] = expand(str(item.get("value", "")), env)
        security = self._security(pod, c, rule)
        if security.get("uid") is not None and security["uid"] != 0:
            env.setdefault("HOME", "/")
        else:
            env.setdefault("HOME", "/root")
        shim = SHIM_PATH
        env["LD_PRELOAD"] = f"{shim} {env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else shim
        env[preload.POD_IP_VARIABLE] = box.ip
        command = list(c.spec.get("command") or rule.entrypoint)
        if c.spec.get("args") is not None:
            args = list(c.spec.get("args") or [])
        else:
            args = [] if c.spec.get("command") else list(rule.args)
        argv = [expand(str(a), env) for a in [*command, *args]]
        return argv, env, rule

    def _env_from(self, namespace: str, source: Obj) -> dict[str, str]:
        prefix = source.get("prefix") or ""
        if source.get("configMapRef") is not None:
            ref = source["configMapRef"]
            obj = self._get("v1/configmaps", namespace, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    return {}
                raise ContainerConfigError(f'configmap "{ref.get("name")}" not found')
            return {prefix + k: str(v) for k, v in (obj.get("data") or {}).items()}
        if source.get("secretRef") is not None:
            import base64

            ref = source["secretRef"]
            obj = self._get("v1/secrets", namespace, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    return {}
                raise ContainerConfigError(f'secret "{ref.get("name")}" not found')
            return {
                prefix + k: base64.b64decode(v).decode(errors="replace")
                for k, v in (obj.get("data") or {}).items()
            }
        return {}

    def _value_from(self, pod: Obj, box: PodBox, source: Obj) -> str | None:
        import base64

        if source.get("fieldRef") is not None:
            try:
                return field_value(pod, source["fieldRef"].get("fieldPath", ""), box.ip)
            except VolumeError as err:
                raise ContainerConfigError(str(err)) from None
        if source.get("resourceFieldRef") is not None:
            return resource_value(pod, source["resourceFieldRef"])
        for kind, resource in (
            ("configMapKeyRef", "v1/configmaps"),
            ("secretKeyRef", "v1/secrets"),
        ):
            ref = source.get(kind)
            if ref is None:
                continue
            obj = self._get(resource, box.namespace, ref.get("name", ""))
            word = "configmap" if kind == "configMapKeyRef" else "secret"
            if obj is None:
                if ref.get("optional"):
                    return None
                raise ContainerConfigError(f'{word} "{ref.get("name")}" not found')
            data = obj.get("data") or {}
            key = ref.get("key", "")
            if key not in data:
                if ref.get("optional"):
                    return None
                raise ContainerConfigError(
                    f"couldn't find key {key} in {word.capitalize()} "
                    f"{box.namespace}/{ref.get('name')}"
                )
            raw = data[key]
            return base64.b64decode(raw).decode(errors="replace") if word == "secret" else str(raw)
        return None

    def _security(self, pod: Obj, c: ContainerProcess, rule: ImageRule) -> dict[str, Any]:
        pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
        sc = c.spec.get("securityContext") or {}
        if rule.root_only:
            return {
                "uid": None,
                "gid": None,
                "groups": (),
                "read_only_root": bool(sc.get("readOnlyRootFilesystem")),
            }
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        gid = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
        groups = [
            g
            for g in [pod_sc.get("fsGroup"), *(pod_sc.get("supplementalGroups") or [])]
            if g is not None
        ]
        if uid is not None and gid is None:
            gid = uid
        return {
            "uid": uid,
            "gid": gid,
            "groups": tuple(int(g) for g in groups),
            "read_only_root": bool(sc.get("readOnlyRootFilesystem")),
        }

    def _resolve(self, argv: list[str], env: Mapping[str, str], rule: ImageRule) -> str:
        """'' when ``argv[0]`` exists in the container's filesystem, else the runtime's
        words for why it cannot run."""
        if not argv:
            return "no command specified: the container has no command and its image none"
        missing = rule.missing()
        if missing:
            what = f"; install {rule.description}" if rule.description else ""
            return (
                f"exec: {argv[0]!r}: the image's programs are not installed on this machine "
                f"(missing {', '.join(missing)}{what})"
            )
        provided = {**rule.links, **rule.files}
        first = argv[0]
        if "/" in first:
            if first in provided or _executable(Path(first)):
                return ""
            return f'exec: "{first}": stat {first}: no such file or directory'
        for folder in env.get("PATH", DEFAULT_PATH).split(":"):
            candidate = f"{folder.rstrip('/')}/{first}"
            if candidate in provided or _executable(Path(candidate)):
                return ""
        return f'exec: "{first}": executable file not found in $PATH'

    def _preload(self) -> Path:
        if self._shim is None:
            self._shim = preload.build(self.state_dir / "lib")
        return self._shim

    def _sandbox(
        self,
        box: PodBox,
        pod: Obj,
        c: ContainerProcess,
        argv: list[str],
        env: dict[str, str],
        rule: ImageRule,
    ) -> SandboxSpec:
        security = self._security(pod, c, rule)
        mounts: list[Mount] = []
        for m in c.spec.get("volumeMounts") or []:
            source = box.volumes.get(m.get("name", ""))
            if source is None:
                continue
            if m.get("subPath"):
                source = source / m["subPath"]
                if not source.exists():
                    source.mkdir(parents=True, exist_ok=True)
            mounts.append(Mount(source, m.get("mountPath", ""), bool(m.get("readOnly"))))
        folder = box.folder / "containers" / c.name
        return SandboxSpec(
            root=folder / "root",
            upper=folder / "upper",
            work=folder / "work",
            hostname=box.hostname,
            mounts=tuple(mounts),
            argv=tuple(argv),
            env=env,
            working_dir=c.spec.get("workingDir") or "/",
            uid=security["uid"],
            gid=security["gid"],
            groups=security["groups"],
            read_only_root=security["read_only_root"],
            links=dict(rule.links),
            files=dict(rule.files),
            copies={SHIM_PATH: self._preload()},
        )

    # ------------------------------------------------------------------ volumes

    def _get(self, resource: str, namespace: str, name: str) -> Obj | None:
        from milkyway.sim.apiserver.errors import ApiError

        if self._api is None:
            return None
        try:
            return self._api.get(resource, name, namespace=namespace or None)
        except ApiError:
            return None

    def _sources(self, box: PodBox) -> VolumeSources:
        return VolumeSources(
            configmap=lambda ns, n: self._get("v1/configmaps", ns, n),
            secret=lambda ns, n: self._get("v1/secrets", ns, n),
            claim_volume=self._claim_dir,
            token=self.token,
            ca_pem=self.cluster.ca_pem,
            pod_ip=box.ip,
        )

    def volume_dir(self, pv: str) -> Path:
        """The directory of PersistentVolume ``pv``: it belongs to the volume, not a pod."""
        return self.state_dir / "volumes" / pv

    def _claim_dir(self, namespace: str, claim: str) -> Path | None:
        obj = self._get("v1/persistentvolumeclaims", namespace, claim)
        pv = ((obj or {}).get("spec") or {}).get("volumeName")
        return self.volume_dir(pv) if pv else None

    def _fs_group(self, pod: Obj) -> int | None:
        value = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
        return int(value) if value is not None else None

    def _mount_volumes(self, box: PodBox, pod: Obj) -> None:
        sources = self._sources(box)
        gid = self._fs_group(pod)
        volumes: dict[str, Path] = {}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = volume.get("name", "")
            files = projected_files(pod, volume, sources)
            if files is not None:
                target = box.folder / "volumes" / name
                write_atomic(target, files, gid)
                volumes[name] = target
                box.refreshable.add(name)
            elif "emptyDir" in volume:
                target = box.folder / "volumes" / name
                target.mkdir(parents=True, exist_ok=True)
                _own(target, gid)
                volumes[name] = target
            elif "persistentVolumeClaim" in volume:
                claim = (volume["persistentVolumeClaim"] or {}).get("claimName", "")
                target = self._claim_dir(box.namespace, claim)
                if target is None:
                    raise VolumeError(f'persistentvolumeclaim "{claim}" is not bound')
                target.mkdir(parents=True, exist_ok=True)
                if self.sized_volumes and target.name not in self._failed_volumes:
                    self._mount_sized(target)
                if target.name not in self._failed_volumes:
                    _own(target, gid)
                volumes[name] = target
            elif "hostPath" in volume:
                volumes[name] = Path((volume["hostPath"] or {}).get("path", "/"))
            else:
                kind = next((k for k in volume if k != "name"), "unknown")
                raise VolumeError(f'volume "{name}": {kind} volumes are not supported')
        box.volumes = volumes

    async def _sync_volumes(self) -> None:
        """Refresh ConfigMap, Secret, downward API and projected files, as a kubelet's
        periodic sync does, so changes reach the files after a delay."""
        while True:
            await asyncio.sleep(self.volume_sync_seconds)
            for box in list(self.pods.values()):
                if not box.mounted or box.terminating:
                    continue
                pod = self._get("v1/pods", box.namespace, box.name)
                if pod is None or uid_of(pod) != box.uid:
                    continue
                sources = self._sources(box)
                gid = self._fs_group(pod)
                for volume in (pod.get("spec") or {}).get("volumes") or []:
                    if volume.get("name") not in box.refreshable:
                        continue
                    try:
                        files = projected_files(pod, volume, sources)
                        if files is not None:
                            write_atomic(box.volumes[volume["name"]], files, gid)
                    except (VolumeError, OSError) as err:
                        log.debug(
                            "volume %s of %s/%s not refreshed: %s",
                            volume.get("name"),
                            box.namespace,
                            box.name,
                            err,
                        )

    def endpoints_changed(self, endpoints: Obj | None, namespace: str, name: str) -> None:
        """A Service's Endpoints changed: its name resolves to its ready pods' addresses."""
        ips = [
            address.get("ip", "")
            for subset in ((endpoints or {}).get("subsets") or [])
            for address in subset.get("addresses") or []
        ]
        self.network.set_service(self.cluster.name, namespace, name, ips)

    def _mount_sized(self, target: Path) -> None:
        pv = self._get("v1/persistentvolumes", "", target.name) or {}
        capacity = ((pv.get("spec") or {}).get("capacity") or {}).get("storage")
        if capacity is None:
            return
        try:
            sized.mount_sized(target, int(parse_quantity(capacity)))
        except (sized.SizedVolumeError, ValueError) as error:
            raise VolumeError(str(error)) from None
        self._sized.add(target)

    def pod_volume(self, namespace: str, pod: str, volume: str | None = None) -> str:
        """The PersistentVolume behind the claim of ``pod`` (its volume called ``volume``,
        or its only claim)."""
        obj = self._get("v1/pods", namespace, pod)
        if obj is None:
            raise ValueError(f"pod {namespace}/{pod} not found in cluster {self.cluster.name}")
        claims = {
            v.get("name", ""): (v.get("persistentVolumeClaim") or {}).get("claimName", "")
            for v in (obj.get("spec") or {}).get("volumes") or []
            if "persistentVolumeClaim" in v
        }
        if volume is not None and volume not in claims:
            raise ValueError(
                f"pod {namespace}/{pod} has no claim volume {volume!r}; it has {sorted(claims)}"
            )
        if volume is None and len(claims) != 1:
            raise ValueError(
                f"pod {namespace}/{pod} has {len(claims)} claim volumes {sorted(claims)}; "
                "name one with volume="
            )
        claim = claims[volume] if volume is not None else next(iter(claims.values()))
        bound = self._get("v1/persistentvolumeclaims", namespace, claim) or {}
        pv = (bound.get("spec") or {}).get("volumeName")
        if not pv:
            raise ValueError(f"claim {namespace}/{claim} is not bound to a volume")
        return str(pv)

    def fill_volume(self, pv: str, percent: float) -> int:
        """``fill-disk``: write into volume ``pv`` until it is ``percent`` % used."""
        try:
            return sized.fill(self.volume_dir(pv), percent)
        except sized.SizedVolumeError as error:
            raise ValueError(str(error)) from None

    def drain_volume(self, pv: str) -> None:
        sized.drain(self.volume_dir(pv))

    def set_volume_failed(self, pv: str, failed: bool) -> None:
        """``fail-disk``: the volume's directory stops working for the pod's processes
        (no access for non-root users), or works again."""
        folder = self.volume_dir(pv)
        if not folder.exists():
            if failed:
                self._failed_volumes[pv] = 0o755
            else:
                self._failed_volumes.pop(pv, None)
            return
        if failed and pv not in self._failed_volumes:
            self._failed_volumes[pv] = stat.S_IMODE(folder.stat().st_mode)
            os.chmod(folder, 0)
        elif not failed and pv in self._failed_volumes:
            os.chmod(folder, self._failed_volumes.pop(pv))

    # ------------------------------------------------------------------ probes

    async def _probe(self, box: PodBox, pod: Obj, c: ContainerProcess, inst: Any) -> None:
        spec = c.spec
        ref = object_ref(pod)

        def alive() -> bool:
            return c.instance is inst and inst.process.poll() is None and not inst.stopping

        await inst.set_up.wait()

        async def loop(kind: str, probe: Obj, on_result: Callable[[bool], None]) -> None:
            period = float(probe.get("periodSeconds") or 10)
            success_needed = int(probe.get("successThreshold") or 1)
            failure_limit = int(probe.get("failureThreshold") or 3)
            await asyncio.sleep(float(probe.get("initialDelaySeconds") or 0))
            successes = failures = 0
            while alive():
                handle_enter = enter_argv(inst.process.pid)
                ok, why = await run_probe(probe, spec, box.ip, handle_enter, c.env)
                if not alive():
                    return
                if ok:
                    successes += 1
                    failures = 0
                    if successes >= success_needed:
                        on_result(True)
                        if kind == "startup":
                            return
                else:
                    failures += 1
                    successes = 0
                    self._emit(
                        Event(
                            ref,
                            "Warning",
                            "Unhealthy",
                            f"{kind.capitalize()} probe failed: {why}",
                            SOURCE,
                        )
                    )
                    if failures >= failure_limit:
                        on_result(False)
                        if kind != "readiness":
                            return
                await asyncio.sleep(period)

        def readiness(ok: bool) -> None:
            if c.ready != ok:
                c.ready = ok
                self._enqueue(box.namespace, box.name)

        def fatal(kind: str) -> Callable[[bool], None]:
            def result(ok: bool) -> None:
                if ok:
                    if kind == "startup":
                        c.started_probe_ok = True
                        self._enqueue(box.namespace, box.name)
                    return
                message = f"Container {c.name} failed {kind} probe, will be restarted"
                self._emit(Event(ref, "Normal", "Killing", message, SOURCE))
                c.stop(_grace(pod, spec.get(f"{kind}Probe") or {}), reason=message)

            return result

        try:
            startup = spec.get("startupProbe")
            if startup:
                await loop("startup", startup, fatal("startup"))
                if not c.started_probe_ok:
                    return
            tasks = []
            if spec.get("readinessProbe"):
                tasks.append(loop("readiness", spec["readinessProbe"], readiness))
            if spec.get("livenessProbe"):
                tasks.append(loop("liveness", spec["livenessProbe"], fatal("liveness")))
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("probes of %s/%s %s failed", box.namespace, box.name, c.name)

    def _emit(self, event: Event) -> None:
        self.on_event(event)

    on_event: Callable[[Event], None] = staticmethod(lambda _e: None)  # type: ignore[assignment]

    # ------------------------------------------------------------------ endings

    def terminate(self, pod: Obj) -> bool:
        """Graceful deletion: SIGTERM every container now, SIGKILL after the grace
        period. True once every process of the pod is gone (its folder removed)."""
        box = self.pods.get((namespace_of(pod), name_of(pod)))
        if box is None or box.uid != uid_of(pod):
            return True
        if not box.terminating:
            box.terminating = True
            grace = float((pod.get("metadata") or {}).get("deletionGracePeriodSeconds") or 0)
            for c in box.all():
                c.cancel_probes()
                c.status.ready = False
                c.stop(grace)
        if any(c.group_running for c in box.all()):
            return False
        self._destroy(box)
        return True

    def forget(self, namespace: str, name: str) -> None:
        """The pod object is gone: kill whatever of it still runs, remove its folder."""
        box = self.pods.get((namespace, name))
        if box is not None:
            self._destroy(box)

    def fail_pod(self, namespace: str, name: str) -> None:
        """The pod failed for good (its disk failed): its processes are killed."""
        box = self.pods.get((namespace, name))
        if box is None:
            return
        box.failed = True
        for c in box.all():
            c.cancel_probes()
            c.kill()

    def kill_node(self, node: str) -> None:
        """The node is lost: every process of its pods dies at once."""
        for box in list(self.pods.values()):
            if box.node == node:
                for c in box.all():
                    c.cancel_probes()
                    if c.instance is not None and c.instance.process.poll() is None:
                        c.instance.reason = "the node was lost"
                    c.kill()

    def _destroy(self, box: PodBox) -> None:
        for c in box.all():
            c.cancel_probes()
            c.kill()
        self.pods.pop((box.namespace, box.name), None)
        self.network.unregister(self.cluster.name, box.namespace, box.name)
        self.network.release(box.ip)
        shutil.rmtree(box.folder, ignore_errors=True)

    def stop(self, grace: float = 2.0) -> None:
        """End every process this runtime started: SIGTERM, then SIGKILL after ``grace``."""
        if self._sync_task is not None:
            self._sync_task.cancel()
            self._sync_task = None
        boxes = list(self.pods.values())
        for box in boxes:
            for c in box.all():
                c.cancel_probes()
                if c.instance is not None and c.instance.process.poll() is None:
                    signal_group(c.instance.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(
            c.instance is not None and c.instance.process.poll() is None
            for box in boxes
            for c in box.all()
        ):
            time.sleep(0.05)
        for box in boxes:
            self._destroy(box)
        for pgid in self.started_groups:
            signal_group(pgid, signal.SIGKILL)
        # SIGKILL is delivered when the process next runs: on a busy machine a killed
        # process can still be listed for a moment. Wait, so that stop() returning means
        # no process of this runtime runs any more.
        deadline = time.monotonic() + KILL_WAIT
        while self.leftover_groups() and time.monotonic() < deadline:
            time.sleep(0.02)
        for pv, mode in list(self._failed_volumes.items()):
            with contextlib.suppress(OSError):
                os.chmod(self.volume_dir(pv), mode)
        for folder in self._sized:
            sized.unmount_sized(folder)
        self._sized.clear()
        atexit.unregister(self._kill_started)

    def _kill_started(self) -> None:
        """Last resort when the interpreter exits without :meth:`stop` (an unhandled
        error): no process group this runtime started outlives it."""
        for pgid in self.started_groups:
            signal_group(pgid, signal.SIGKILL)

    def leftover_groups(self) -> list[int]:
        """Process groups this runtime started that still have a live process."""
        return sorted(g for g in self.started_groups if group_alive(g))


def _grace(pod: Obj, probe: Obj) -> float:
    value = probe.get("terminationGracePeriodSeconds")
    if value is None:
        value = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    return float(value)


def _own(folder: Path, gid: int | None) -> None:
    """``fsGroup``: the group owns the volume and new files inherit it (setgid)."""
    if gid is None:
        return
    os.chown(folder, 0, gid)
    os.chmod(folder, 0o2775)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def default_state_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="milkyway-pods-"))

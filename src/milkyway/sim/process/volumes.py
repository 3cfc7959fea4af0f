"""A pod's volumes as real directories, laid out as a kubelet lays them out.

ConfigMap, Secret, downward API and projected volumes are written with the kubelet's
atomic writer layout: the files live in a timestamped ``..<time>`` directory, ``..data``
is a symlink to it and every top-level name is a symlink through ``..data``. An update
writes a new timestamped directory and renames a fresh ``..data`` link over the old one,
so a reader sees either the old set of files or the new one, never a mix. ``emptyDir``
is a directory of the pod; a ``persistentVolumeClaim`` is the directory of its bound
PersistentVolume, which belongs to the volume, not the pod, so it outlives the pod and is
handed to the next pod that claims it.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]

DATA_LINK = "..data"
DEFAULT_MODE = 0o644


class VolumeError(Exception):
    """A volume cannot be set up (the kubelet reports it as ``FailedMount``)."""


@dataclass(frozen=True)
class VolumeSources:
    """What the runtime reads to fill volumes: objects of the pod's cluster, and facts."""

    configmap: Lookup
    secret: Lookup
    claim_volume: Callable[[str, str], Path | None]
    """(namespace, claim) -> the directory of the PersistentVolume bound to the claim."""
    token: Callable[[str, str], str]
    """(namespace, service account) -> a bearer token for it."""
    ca_pem: str
    pod_ip: str


def _field_value(pod: Obj, path: str, pod_ip: str) -> str:
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": md.get("name", ""),
        "metadata.namespace": md.get("namespace", ""),
        "metadata.uid": md.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": (pod.get("status") or {}).get("hostIP", ""),
    }
    if path in simple:
        return str(simple[path])
    if path in ("metadata.labels", "metadata.annotations"):
        values = md.get(path.split(".", 1)[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    for kind in ("labels", "annotations"):
        prefix = f"metadata.{kind}['"
        if path.startswith(prefix) and path.endswith("']"):
            return str((md.get(kind) or {}).get(path[len(prefix) : -2], ""))
    raise VolumeError(f"fieldRef {path!r} is not supported")


def field_value(pod: Obj, path: str, pod_ip: str) -> str:
    """The value of a downward-API ``fieldRef.fieldPath`` for ``pod``."""
    return _field_value(pod, path, pod_ip)


def resource_value(pod: Obj, ref: Mapping[str, Any]) -> str:
    """A ``resourceFieldRef`` value: the container's limit (or request), in the divisor."""
    from milkyway.sim.controllers.objects import parse_quantity

    name = ref.get("containerName", "")
    resource = ref.get("resource", "")
    containers = (pod.get("spec") or {}).get("containers") or []
    container = next((c for c in containers if c.get("name") == name), None)
    if container is None and containers:
        container = containers[0]
    kind, _, what = resource.partition(".")
    values = ((container or {}).get("resources") or {}).get(kind) or {}
    raw = values.get(what)
    if raw is None:
        return (
            "0"
            if kind == "requests"
            else str({"cpu": 8, "memory": 32 << 30, "ephemeral-storage": 100 << 30}.get(what, 0))
        )
    divisor = parse_quantity(ref.get("divisor") or "1")
    amount = parse_quantity(raw) / (divisor or 1)
    return str(int(-(-amount // 1)))


def _key_items(
    data: Mapping[str, bytes], items: list[Obj] | None, default_mode: int, where: str
) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out: dict[str, tuple[bytes, int]] = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            raise VolumeError(f'{where}: key "{key}" not found')
        out[item.get("path") or key] = (data[key], int(item.get("mode") or default_mode))
    return out


def _configmap_data(cm: Obj) -> dict[str, bytes]:
    data = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return data


def _secret_data(secret: Obj) -> dict[str, bytes]:
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    data.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


def _object_files(
    kind: str,
    source: Obj,
    namespace: str,
    lookup: Lookup,
    default_mode: int,
) -> dict[str, tuple[bytes, int]]:
    name = source.get("name") or source.get("secretName") or ""
    obj = lookup(namespace, name)
    if obj is None:
        if source.get("optional"):
            return {}
        plural = "configmap" if kind == "configMap" else "secret"
        raise VolumeError(f'{plural} "{name}" not found')
    data = _configmap_data(obj) if kind == "configMap" else _secret_data(obj)
    return _key_items(data, source.get("items"), default_mode, f"{kind} {name}")


def _downward_files(
    pod: Obj, items: list[Obj], default_mode: int, pod_ip: str
) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    for item in items:
        mode = int(item.get("mode") or default_mode)
        if item.get("fieldRef"):
            value = field_value(pod, item["fieldRef"].get("fieldPath", ""), pod_ip)
        elif item.get("resourceFieldRef"):
            value = resource_value(pod, item["resourceFieldRef"])
        else:
            raise VolumeError(f"downwardAPI item {item.get('path')!r} has no fieldRef")
        out[item.get("path", "")] = (value.encode(), mode)
    return out


def projected_files(
    pod: Obj, volume: Obj, sources: VolumeSources
) -> dict[str, tuple[bytes, int]] | None:
    """The files of a ConfigMap/Secret/downward API/projected volume; None for other kinds."""
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    if "configMap" in volume:
        src = volume["configMap"] or {}
        mode = int(src.get("defaultMode") or DEFAULT_MODE)
        return _object_files("configMap", src, namespace, sources.configmap, mode)
    if "secret" in volume:
        src = volume["secret"] or {}
        mode = int(src.get("defaultMode") or DEFAULT_MODE)
        return _object_files("secret", src, namespace, sources.secret, mode)
    if "downwardAPI" in volume:
        src = volume["downwardAPI"] or {}
        mode = int(src.get("defaultMode") or DEFAULT_MODE)
        return _downward_files(pod, src.get("items") or [], mode, sources.pod_ip)
    if "projected" not in volume:
        return None
    src = volume["projected"] or {}
    mode = int(src.get("defaultMode") or DEFAULT_MODE)
    files: dict[str, tuple[bytes, int]] = {}
    for part in src.get("sources") or []:
        if part.get("configMap") is not None:
            files.update(
                _object_files("configMap", part["configMap"], namespace, sources.configmap, mode)
            )
        elif part.get("secret") is not None:
            files.update(_object_files("secret", part["secret"], namespace, sources.secret, mode))
        elif part.get("downwardAPI") is not None:
            files.update(
                _downward_files(pod, part["downwardAPI"].get("items") or [], mode, sources.pod_ip)
            )
        elif part.get("serviceAccountToken") is not None:
            account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
            path = part["serviceAccountToken"].get("path") or "token"
            files[path] = (sources.token(namespace, account).encode(), mode)
        elif part.get("clusterTrustBundle") is not None:
            raise VolumeError("projected clusterTrustBundle sources are not supported")
    return files


def write_atomic(target: Path, files: Mapping[str, tuple[bytes, int]], gid: int | None) -> bool:
    """Lay ``files`` out under ``target`` the kubelet's way; False when nothing changed."""
    target.mkdir(parents=True, exist_ok=True)
    current = target / DATA_LINK
    if current.is_symlink() and _same(current, files):
        return False
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + f"{time.time_ns() % 10**9}"
    fresh = target / stamp
    fresh.mkdir()
    for rel, (data, mode) in files.items():
        path = fresh / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode & 0o777)
        if gid is not None:
            os.chown(path, 0, gid)
    os.chmod(fresh, 0o755)
    old = os.readlink(current) if current.is_symlink() else None
    tmp = target / "..data_tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(stamp)
    os.replace(tmp, current)
    tops = {Path(rel).parts[0] for rel in files}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            link.symlink_to(f"{DATA_LINK}/{top}")
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.is_symlink() and entry.name not in tops:
            entry.unlink()
    if old and old != stamp:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


def _same(current: Path, files: Mapping[str, tuple[bytes, int]]) -> bool:
    folder = current.resolve()
    existing = {
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
    }
    if existing != set(files):
        return False
    for rel, (data, mode) in files.items():
        path = folder / rel
        if path.read_bytes() != data or (path.stat().st_mode & 0o777) != (mode & 0o777):
            return False
    return True

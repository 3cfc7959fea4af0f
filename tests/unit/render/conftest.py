"""Helpers of the render tests: Applications for any type and pattern, and the checks every
rendered manifest must pass (kubernetes-validate strict, security policy)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import yaml

from milkyway import __version__
from milkyway.components import builtin_component_types
from milkyway.model import ResolvedApplication, load_application, resolve
from milkyway.model.component_type import ComponentType

TYPES = builtin_component_types()
KUBERNETES_VERSION = "1.32"

_DEPENDENCY_OF = {
    "kafka": "zookeeper",
    "flink-jobmanager": "zookeeper",
    "flink-taskmanager": "flink-jobmanager",
}


def _component(type_name: str, zones: list[tuple[str, int]], **extra: Any) -> dict[str, Any]:
    spec = TYPES[type_name].spec
    component: dict[str, Any] = {
        "name": f"{type_name}1",
        "version": spec.versions[-1].version,
        "regions": [
            {
                "name": "NA",
                "zones": [
                    {"name": zone, "size": size, "nodes": [f"{zone}-n{i}" for i in range(size)]}
                    for zone, size in zones
                ],
            }
        ],
    }
    component.update(extra)
    return component


def application(
    type_name: str, workload: str | None = None, zones: list[tuple[str, int]] | None = None
) -> dict[str, Any]:
    """An Application running ``type_name`` (plus what it needs) as ``workload``."""
    zones = zones or [("phx", 3)]
    components = []
    dependency = _DEPENDENCY_OF.get(type_name)
    if dependency is not None:
        components.append(_component(dependency, [("phx", 3 if dependency == "zookeeper" else 1)]))
    extra = {"workload": workload} if workload else {}
    components.append(_component(type_name, zones, **extra))
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "Application",
        "metadata": {"name": "app", "namespace": "data"},
        "spec": {"components": components},
    }


def resolved(data: dict[str, Any]) -> ResolvedApplication:
    return resolve(load_application(yaml.safe_dump(data)), TYPES)


def strict_errors(manifest: dict[str, Any]) -> str | None:
    """Why kubernetes-validate (strict, Kubernetes 1.32) rejects ``manifest``, or None."""
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return (
            f"{manifest['kind']}/{manifest['metadata']['name']}: {exc.message} at {list(exc.path)}"
        )
    return None


def pod_specs(manifest: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(metadata, spec) of the pod (template) inside ``manifest``, if any."""
    if manifest["kind"] == "Pod":
        return [(manifest["metadata"], manifest["spec"])]
    if manifest["kind"] in ("StatefulSet", "Deployment"):
        template = manifest["spec"]["template"]
        return [(template["metadata"], template["spec"])]
    return []


def policy_violations(manifest: dict[str, Any], ctype: ComponentType) -> list[str]:
    """Every breach of the security policy in the pods of ``manifest``."""
    problems: list[str] = []
    for metadata, spec in pod_specs(manifest):
        where = f"{manifest['kind']}/{manifest['metadata']['name']}"
        pod = spec.get("securityContext", {})
        if pod.get("runAsNonRoot") is not True:
            problems.append(f"{where}: pod runAsNonRoot")
        for key in ("runAsUser", "runAsGroup", "fsGroup"):
            if not isinstance(pod.get(key), int) or pod[key] <= 0:
                problems.append(f"{where}: pod {key} must be a non-zero id")
        if pod.get("seccompProfile") != {"type": "RuntimeDefault"}:
            problems.append(f"{where}: pod seccompProfile")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: service account token mounted")
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            problems.append(f"{where}: host namespaces")
        names = [c["name"] for c in spec["containers"]]
        if "milkyway-agent" not in names:
            problems.append(f"{where}: no sidecar agent")
        for container in spec["containers"] + spec.get("initContainers", []):
            problems.extend(_container_violations(where, container, ctype))
        if "milkyway.ebay.com/config-hash" not in metadata.get("annotations", {}):
            problems.append(f"{where}: no config-hash annotation")
        for label in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/managed-by",
            "milkyway.ebay.com/application",
            "milkyway.ebay.com/component",
            "milkyway.ebay.com/zone",
        ):
            if label not in metadata.get("labels", {}):
                problems.append(f"{where}: label {label} missing")
    return problems


def _container_violations(where: str, container: dict[str, Any], ctype: ComponentType) -> list[str]:
    name = f"{where}/{container['name']}"
    context = container.get("securityContext", {})
    problems = []
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{name}: allowPrivilegeEscalation")
    if context.get("privileged"):
        problems.append(f"{name}: privileged")
    if context.get("runAsNonRoot") is not True or context.get("runAsUser", 1) == 0:
        problems.append(f"{name}: may run as root")
    if context.get("seccompProfile") != {"type": "RuntimeDefault"}:
        problems.append(f"{name}: seccompProfile")
    capabilities = context.get("capabilities", {})
    if capabilities.get("drop") != ["ALL"]:
        problems.append(f"{name}: capabilities not all dropped")
    if container["name"] == "milkyway-agent":
        if capabilities.get("add"):
            problems.append(f"{name}: the agent adds capabilities")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: agent root filesystem writable")
        if container["image"] != f"milkyway/milkyway:{__version__}":
            problems.append(f"{name}: agent image {container['image']}")
        if "limits" not in container.get("resources", {}):
            problems.append(f"{name}: agent without limits")
    else:
        allowed = set(ctype.spec.container.add_capabilities)
        if not set(capabilities.get("add", [])) <= allowed:
            problems.append(f"{name}: capabilities added beyond the type's")
        expected = ctype.spec.container.read_only_root_filesystem
        if context.get("readOnlyRootFilesystem") is not expected:
            problems.append(f"{name}: readOnlyRootFilesystem should be {expected}")
    return problems

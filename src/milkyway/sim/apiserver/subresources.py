"""Subresources with their own shapes: ``scale``, and the pod's ``binding``, ``eviction``
and ``log``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from milkyway.sim.apiserver import errors
from milkyway.sim.apiserver.errors import Cause
from milkyway.sim.apiserver.pod_logs import PodLogs
from milkyway.sim.apiserver.resources import ResourceInfo, ResourceRegistry, ScalePaths
from milkyway.sim.apiserver.selectors import selector_to_string
from milkyway.sim.apiserver.store import MODIFIED, Store, deep_copy

if TYPE_CHECKING:
    from milkyway.sim.apiserver.api import Resource

Obj = dict[str, Any]


def _split_path(path: str) -> list[str]:
    return [p for p in path.strip(".").split(".") if p]


def _get_path(obj: Obj, path: str) -> Any:
    node: Any = obj
    for part in _split_path(path):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _set_path(obj: Obj, path: str, value: Any) -> None:
    parts = _split_path(path)
    node = obj
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


class Subresources:
    """Scale, binding, eviction and logs of :class:`ClusterAPI`."""

    store: Store
    registry: ResourceRegistry
    clock: Callable[[], datetime]
    logs: PodLogs

    # ----------------------------------------------------------------- scale

    def get_scale(self, resource: Resource, name: str, *, namespace: str | None = None) -> Obj:
        info = self.resource(resource)
        paths = self._scale_paths(info)
        ns = self._namespace_for(info, namespace)
        obj = self._stored(info, ns, name)
        md = obj["metadata"]
        replicas = _get_path(obj, paths.spec_replicas)
        status: Obj = {"replicas": _get_path(obj, paths.status_replicas) or 0}
        if info.custom:
            if paths.label_selector:
                selector = _get_path(obj, paths.label_selector)
                if selector:
                    status["selector"] = selector
        else:
            selector = (obj.get("spec") or {}).get("selector")
            if selector:
                status["selector"] = selector_to_string(selector)
        scale_md: Obj = {
            "name": md["name"],
            "uid": md.get("uid"),
            "resourceVersion": md.get("resourceVersion"),
            "creationTimestamp": md.get("creationTimestamp"),
        }
        if ns:
            scale_md["namespace"] = ns
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": scale_md,
            "spec": {"replicas": replicas if replicas is not None else 0},
            "status": status,
        }

    def update_scale(
        self,
        resource: Resource,
        name: str,
        scale: Obj,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Obj:
        info = self.resource(resource)
        paths = self._scale_paths(info)
        ns = self._namespace_for(info, namespace)
        old = self._stored(info, ns, name)
        if not isinstance(scale, dict) or not isinstance(scale.get("spec"), dict):
            raise errors.bad_request("a Scale needs spec.replicas")
        replicas = scale["spec"].get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid(
                "autoscaling",
                "Scale",
                name,
                [
                    Cause(
                        "FieldValueInvalid",
                        f"Invalid value: {json.dumps(replicas)}: must be greater than or equal "
                        "to 0",
                        "spec.replicas",
                    )
                ],
            )
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        body = deep_copy(old)
        body["metadata"]["resourceVersion"] = rv or old["metadata"]["resourceVersion"]
        _set_path(body, paths.spec_replicas, replicas)
        self._update(
            info,
            old,
            body,
            subresource="",
            dry_run=dry_run,
            field_manager=field_manager,
            field_validation="Strict",
            warnings=None,
            operation="Update",
        )
        if dry_run:
            result = self.get_scale(info, name, namespace=ns)
            result["spec"]["replicas"] = replicas
            return result
        return self.get_scale(info, name, namespace=ns)

    def _scale_paths(self, info: ResourceInfo) -> ScalePaths:
        if info.subresource("scale") is None:
            raise errors.not_found(info.group, f"{info.plural}/scale", "")
        return info.scale_paths or ScalePaths()

    # ----------------------------------------------------------------- pods

    def bind(
        self, name: str, target: Obj, *, namespace: str | None = None, dry_run: bool = False
    ) -> Obj:
        """pods/binding: assign a pod to a node (what a scheduler does); 409 if already bound."""
        info = self.registry.require("", "v1", "pods")
        ns = self._namespace_for(info, namespace)
        pod = self._stored(info, ns, name)
        node = (target or {}).get("name") if isinstance(target, dict) else None
        if not node:
            raise errors.invalid(
                "", "Binding", name, [Cause("FieldValueRequired", "Required value", "target.name")]
            )
        current = (pod.get("spec") or {}).get("nodeName")
        if current:
            raise errors.conflict(
                "", "pods/binding", name, f'pod {name} is already assigned to node "{current}"'
            )
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("", "pods/binding", name, "pod is being deleted")
        new = deep_copy(pod)
        new["spec"]["nodeName"] = node
        conditions = [
            c
            for c in (new.setdefault("status", {}).get("conditions") or [])
            if c.get("type") != "PodScheduled"
        ]
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": self.now(),
            }
        )
        new["status"]["conditions"] = conditions
        if not dry_run:
            self.store.commit(info.key, MODIFIED, new)
        return deep_copy(new)

    def evict(self, name: str, eviction: Obj | None = None, *, namespace: str | None = None) -> Obj:
        """pods/eviction: delete the pod unless ``eviction_check`` forbids it (429)."""
        info = self.registry.require("", "v1", "pods")
        ns = self._namespace_for(info, namespace)
        pod = self._stored(info, ns, name)
        body = eviction or {}
        if self.eviction_check is not None and not pod["metadata"].get("deletionTimestamp"):
            self.eviction_check(self, deep_copy(pod), deep_copy(body))
        options = body.get("deleteOptions") or {}
        self.delete_object(
            info,
            name,
            namespace=ns,
            propagation_policy=options.get("propagationPolicy"),
            grace_period_seconds=options.get("gracePeriodSeconds"),
            preconditions=options.get("preconditions"),
            dry_run=bool(options.get("dryRun")),
        )
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

    def write_log(
        self, name: str, container: str, text: str, *, namespace: str = "default"
    ) -> None:
        """Append output of a container (what a kubelet records); see :class:`PodLogs`."""
        self.logs.write(namespace, name, container, text)

    def stop_log(self, name: str, container: str, *, namespace: str = "default") -> None:
        """The container's instance ended: its log becomes ``previous`` and followers of
        ``pods/log`` finish, as when a real container exits."""
        self.logs.stop(namespace, name, container)

    def log_container(self, name: str, *, namespace: str | None, container: str | None) -> str:
        """The container ``pods/log``, ``exec`` and ``attach`` address; 400 naming the
        choices when none or a wrong one is given for a pod of several."""
        info = self.registry.require("", "v1", "pods")
        ns = self._namespace_for(info, namespace)
        pod = self._stored(info, ns, name)
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in spec.get("containers") or []]
        every = names + [c.get("name") for c in spec.get("initContainers") or []]
        if container is None:
            if len(names) != 1:
                raise errors.bad_request(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(str(n) for n in names)}]"
                )
            return str(names[0])
        if container not in every:
            raise errors.bad_request(
                f"container {container} is not valid for pod {name}; choose one of: "
                f"[{' '.join(str(n) for n in names)}]"
            )
        return container

    def read_log(
        self,
        name: str,
        *,
        namespace: str | None = None,
        container: str | None = None,
        tail_lines: int | None = None,
        previous: bool = False,
    ) -> str:
        """The current (or ``previous``) instance's log as text (``tail_lines``: the last
        lines only); 400 for ``previous`` when the container never stopped."""
        chosen = self.log_container(name, namespace=namespace, container=container)
        info = self.registry.require("", "v1", "pods")
        log = self.logs.container(self._namespace_for(info, namespace), name, chosen)
        if previous:
            if log is None or log.previous is None:
                raise errors.bad_request(
                    f'previous terminated container "{chosen}" in pod "{name}" not found'
                )
            lines = [line.text for line in log.previous]
        else:
            lines = [line.text for line in log.current] if log is not None else []
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        return "".join(f"{line}\n" for line in lines)

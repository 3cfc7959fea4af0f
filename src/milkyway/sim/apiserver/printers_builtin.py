"""The columns of built-in kinds, as the real API server's printers compute them.

Each :class:`Column` pairs a column definition with a function from (object, now) to
the cell. Cells follow kubectl's conventions: ``<none>`` for empty lists and absent
addresses, ``<pending>`` for load balancers without an address, ``N/A`` for unset PDB
bounds, access modes abbreviated (``RWO``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from milkyway.sim.apiserver.json_values import as_array, as_object
from milkyway.sim.apiserver.timefmt import age, parse_time, since

Cell = Callable[[dict, datetime], Any]

NONE = "<none>"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    cell: Cell
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


def _spec(obj: dict) -> dict:
    return as_object(obj.get("spec"))


def _status(obj: dict) -> dict:
    return as_object(obj.get("status"))


def _meta(obj: dict) -> dict:
    return as_object(obj.get("metadata"))


def name_column() -> Column:
    return Column(
        "Name",
        "string",
        lambda obj, _now: _meta(obj).get("name", ""),
        format="name",
        description="Name must be unique within a namespace.",
    )


def _age_column() -> Column:
    return Column(
        "Age",
        "string",
        age,
        description="CreationTimestamp is a timestamp representing the server time when this "
        "object was created.",
    )


def _col(
    name: str, cell: Cell, *, type_: str = "string", priority: int = 0, desc: str = ""
) -> Column:
    return Column(name, type_, cell, description=desc, priority=priority)


def _spec_cell(key: str, default: str = "") -> Cell:
    return lambda obj, _now: _spec(obj).get(key) or default


def _status_cell(key: str, default: str = "") -> Cell:
    return lambda obj, _now: _status(obj).get(key) or default


def _top_cell(key: str, default: str = "") -> Cell:
    return lambda obj, _now: obj.get(key) or default


# -- pods ---------------------------------------------------------------------------------


def _pod_ready(obj: dict, _now: datetime) -> str:
    total = len(as_array(_spec(obj).get("containers")))
    ready = sum(
        1 for s in as_array(_status(obj).get("containerStatuses")) if as_object(s).get("ready")
    )
    return f"{ready}/{total}"


def _pod_status(obj: dict, _now: datetime) -> str:
    status = _status(obj)
    reason = status.get("reason") or status.get("phase") or ""
    init_statuses = as_array(status.get("initContainerStatuses"))
    init_total = len(as_array(_spec(obj).get("initContainers")))
    for i, container in enumerate(init_statuses):
        state = as_object(as_object(container).get("state"))
        terminated = as_object(state.get("terminated"))
        waiting = as_object(state.get("waiting"))
        if terminated and terminated.get("exitCode") == 0:
            continue
        if terminated:
            if terminated.get("reason"):
                reason = f"Init:{terminated['reason']}"
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
        elif waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{init_total}"
        break
    else:
        has_running = False
        for container in reversed(as_array(status.get("containerStatuses"))):
            state = as_object(as_object(container).get("state"))
            waiting, terminated = (
                as_object(state.get("waiting")),
                as_object(state.get("terminated")),
            )
            if waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated:
                reason = (
                    f"Signal:{terminated['signal']}"
                    if terminated.get("signal")
                    else f"ExitCode:{terminated.get('exitCode', 0)}"
                )
            elif as_object(container).get("ready") and "running" in state:
                has_running = True
        if reason == "Completed" and has_running:
            conditions = as_array(status.get("conditions"))
            ready = any(
                as_object(c).get("type") == "Ready" and as_object(c).get("status") == "True"
                for c in conditions
            )
            reason = "Running" if ready else "NotReady"
    if _meta(obj).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


def _pod_restarts(obj: dict, now: datetime) -> str:
    restarts = 0
    last: datetime | None = None
    status = _status(obj)
    for container in as_array(status.get("containerStatuses")):
        container = as_object(container)
        restarts += _int(container.get("restartCount"))
        finished = parse_time(
            as_object(as_object(container.get("lastState")).get("terminated")).get("finishedAt")
        )
        if finished and (last is None or finished > last):
            last = finished
    if restarts and last is not None:
        return f"{restarts} ({since(last.isoformat(), now)} ago)"
    return str(restarts)


def _pod_columns() -> list[Column]:
    return [
        name_column(),
        _col(
            "Ready",
            _pod_ready,
            desc="The aggregate readiness state of this pod for accepting traffic.",
        ),
        _col("Status", _pod_status, desc="The aggregate status of the containers in this pod."),
        _col(
            "Restarts",
            _pod_restarts,
            desc="The number of container restarts, and when the last one was.",
        ),
        _age_column(),
        _col(
            "IP",
            _status_cell("podIP", NONE),
            priority=1,
            desc="IP address allocated to the pod.",
        ),
        _col(
            "Node",
            _spec_cell("nodeName", NONE),
            priority=1,
            desc="Name of the Node this pod is scheduled on.",
        ),
        _col(
            "Nominated Node",
            _status_cell("nominatedNodeName", NONE),
            priority=1,
            desc="Name of the Node where this pod is nominated to run.",
        ),
        _col(
            "Readiness Gates",
            _readiness_gates,
            priority=1,
            desc="The readiness gates for this pod.",
        ),
    ]


def _readiness_gates(obj: dict, _now: datetime) -> str:
    gates = as_array(_spec(obj).get("readinessGates"))
    if not gates:
        return NONE
    conditions = {
        as_object(c).get("type"): as_object(c).get("status")
        for c in as_array(_status(obj).get("conditions"))
    }
    ready = sum(1 for g in gates if conditions.get(as_object(g).get("conditionType")) == "True")
    return f"{ready}/{len(gates)}"


# -- nodes, namespaces --------------------------------------------------------------------


def _node_status(obj: dict, _now: datetime) -> str:
    ready = next(
        (
            as_object(c)
            for c in as_array(_status(obj).get("conditions"))
            if as_object(c).get("type") == "Ready"
        ),
        None,
    )
    state = "Unknown"
    if ready is not None:
        state = "Ready" if ready.get("status") == "True" else "NotReady"
    if _spec(obj).get("unschedulable"):
        state += ",SchedulingDisabled"
    return state


def _node_roles(obj: dict, _now: datetime) -> str:
    roles = set()
    for key, value in as_object(_meta(obj).get("labels")).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or NONE


def _node_address(kind: str) -> Cell:
    def cell(obj: dict, _now: datetime) -> str:
        for address in as_array(_status(obj).get("addresses")):
            if as_object(address).get("type") == kind:
                return str(address.get("address", NONE))
        return NONE

    return cell


def _node_info(key: str) -> Cell:
    return lambda obj, _now: as_object(_status(obj).get("nodeInfo")).get(key) or NONE


def _node_columns() -> list[Column]:
    return [
        name_column(),
        _col("Status", _node_status, desc="The status of the node"),
        _col("Roles", _node_roles, desc="The roles of the node"),
        _age_column(),
        _col("Version", _node_info("kubeletVersion"), desc="Kubelet Version reported by the node."),
        _col(
            "Internal-IP",
            _node_address("InternalIP"),
            priority=1,
            desc="List of addresses reachable to the node.",
        ),
        _col(
            "External-IP",
            _node_address("ExternalIP"),
            priority=1,
            desc="List of addresses reachable to the node.",
        ),
        _col("OS-Image", _node_info("osImage"), priority=1, desc="OS Image reported by the node."),
        _col(
            "Kernel-Version",
            _node_info("kernelVersion"),
            priority=1,
            desc="Kernel Version reported by the node.",
        ),
        _col(
            "Container-Runtime",
            _node_info("containerRuntimeVersion"),
            priority=1,
            desc="Container Runtime Version reported by the node.",
        ),
    ]


# -- services, endpoints -----------------------------------------------------------------


def _service_external_ip(obj: dict, _now: datetime) -> str:
    spec = _spec(obj)
    kind = spec.get("type", "ClusterIP")
    external = [str(ip) for ip in as_array(spec.get("externalIPs"))]
    if kind == "ExternalName":
        return str(spec.get("externalName", NONE))
    if kind == "LoadBalancer":
        ingress = as_array(as_object(_status(obj).get("loadBalancer")).get("ingress"))
        found = [str(as_object(i).get("ip") or as_object(i).get("hostname")) for i in ingress]
        found += external
        return ",".join(found) if found else "<pending>"
    return ",".join(external) if external else NONE


def _service_ports(obj: dict, _now: datetime) -> str:
    parts = []
    for port in as_array(_spec(obj).get("ports")):
        port = as_object(port)
        protocol = port.get("protocol", "TCP")
        if port.get("nodePort"):
            parts.append(f"{port.get('port')}:{port['nodePort']}/{protocol}")
        else:
            parts.append(f"{port.get('port')}/{protocol}")
    return ",".join(parts) if parts else NONE


def _selector(value: Any) -> str:
    pairs = [f"{k}={v}" for k, v in sorted(as_object(value).items())]
    return ",".join(pairs) if pairs else NONE


def _service_columns() -> list[Column]:
    return [
        name_column(),
        _col("Type", _spec_cell("type", "ClusterIP"), desc="The type of the service."),
        _col(
            "Cluster-IP",
            _spec_cell("clusterIP", NONE),
            desc="The IP address of the service.",
        ),
        _col("External-IP", _service_external_ip, desc="The external IP address of the service."),
        _col("Port(s)", _service_ports, desc="The ports exposed by the service."),
        _age_column(),
        _col(
            "Selector",
            lambda o, _n: _selector(_spec(o).get("selector")),
            priority=1,
            desc="Route service traffic to pods with label keys and values matching this selector.",
        ),
    ]


def _endpoints(obj: dict, _now: datetime) -> str:
    found = []
    for subset in as_array(obj.get("subsets")):
        subset = as_object(subset)
        ports = [as_object(p).get("port") for p in as_array(subset.get("ports"))] or [None]
        for address in as_array(subset.get("addresses")):
            for port in ports:
                ip = as_object(address).get("ip", "")
                found.append(f"{ip}:{port}" if port is not None else str(ip))
    return _first_three(found)


def _first_three(found: list[str]) -> str:
    """kubectl's way of listing addresses: the first three, then how many more."""
    if not found:
        return NONE
    if len(found) > 3:
        return ",".join(found[:3]) + f" + {len(found) - 3} more..."
    return ",".join(found)


def _slice_ports(obj: dict, _now: datetime) -> str:
    ports = [as_object(p).get("port") for p in as_array(obj.get("ports"))]
    return ",".join("<unset>" if p is None else str(p) for p in ports) or NONE


def _slice_endpoints(obj: dict, _now: datetime) -> str:
    return _first_three(
        [
            str(a)
            for e in as_array(obj.get("endpoints"))
            for a in as_array(as_object(e).get("addresses"))
        ]
    )


def _count(*keys: str) -> Cell:
    return lambda obj, _now: sum(len(as_object(obj.get(k))) for k in keys)


# -- workloads --------------------------------------------------------------------------


def _template_containers(obj: dict) -> list[dict]:
    template = as_object(_spec(obj).get("template"))
    return [as_object(c) for c in as_array(as_object(template.get("spec")).get("containers"))]


def _containers(obj: dict, _now: datetime) -> str:
    return ",".join(str(c.get("name", "")) for c in _template_containers(obj)) or NONE


def _images(obj: dict, _now: datetime) -> str:
    return ",".join(str(c.get("image", "")) for c in _template_containers(obj)) or NONE


def _label_selector(obj: dict, _now: datetime) -> str:
    selector = as_object(_spec(obj).get("selector"))
    parts = [f"{k}={v}" for k, v in sorted(as_object(selector.get("matchLabels")).items())]
    for expression in as_array(selector.get("matchExpressions")):
        expression = as_object(expression)
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = ",".join(str(v) for v in as_array(expression.get("values")))
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) if parts else NONE


def _replicas(obj: dict) -> int:
    value = _spec(obj).get("replicas")
    return value if isinstance(value, int) else 1


def _status_int(key: str) -> Cell:
    return lambda obj, _now: _int(_status(obj).get(key))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _wide_workload() -> list[Column]:
    return [
        _col(
            "Containers", _containers, priority=1, desc="Names of each container in the template."
        ),
        _col(
            "Images",
            _images,
            priority=1,
            desc="Images referenced by each container in the template.",
        ),
        _col("Selector", _label_selector, priority=1, desc="Label selector for pods."),
    ]


def _ready_of_desired_column() -> Column:
    return _col(
        "Ready",
        lambda o, _n: f"{_int(_status(o).get('readyReplicas'))}/{_replicas(o)}",
        desc="Number of the pod with ready state",
    )


def _deployment_columns() -> list[Column]:
    return [
        name_column(),
        _ready_of_desired_column(),
        _col(
            "Up-to-date",
            _status_int("updatedReplicas"),
            type_="integer",
            desc="Pods with the desired template spec.",
        ),
        _col(
            "Available",
            _status_int("availableReplicas"),
            type_="integer",
            desc="Pods ready for at least minReadySeconds.",
        ),
        _age_column(),
        *_wide_workload(),
    ]


def _replicaset_columns() -> list[Column]:
    return [
        name_column(),
        _col(
            "Desired", lambda o, _n: _replicas(o), type_="integer", desc="Number of desired pods."
        ),
        _col("Current", _status_int("replicas"), type_="integer", desc="Number of actual pods."),
        _col("Ready", _status_int("readyReplicas"), type_="integer", desc="Number of pods ready."),
        _age_column(),
        *_wide_workload(),
    ]


def _statefulset_columns() -> list[Column]:
    return [
        name_column(),
        _ready_of_desired_column(),
        _age_column(),
        *_wide_workload()[:2],
    ]


def _node_selector(obj: dict, _now: datetime) -> str:
    return _selector(
        as_object(as_object(_spec(obj).get("template")).get("spec")).get("nodeSelector")
    )


def _daemonset_columns() -> list[Column]:
    return [
        name_column(),
        _col(
            "Desired",
            _status_int("desiredNumberScheduled"),
            type_="integer",
            desc="The number of nodes that should run the daemon pod.",
        ),
        _col(
            "Current",
            _status_int("currentNumberScheduled"),
            type_="integer",
            desc="The number of nodes running at least one daemon pod.",
        ),
        _col(
            "Ready",
            _status_int("numberReady"),
            type_="integer",
            desc="The number of nodes with a ready daemon pod.",
        ),
        _col(
            "Up-to-date",
            _status_int("updatedNumberScheduled"),
            type_="integer",
            desc="The number of nodes running the updated daemon pod.",
        ),
        _col(
            "Available",
            _status_int("numberAvailable"),
            type_="integer",
            desc="The number of nodes with an available daemon pod.",
        ),
        _col(
            "Node Selector",
            _node_selector,
            desc="The node selector of the daemon pods.",
        ),
        _age_column(),
        *_wide_workload(),
    ]


def _controller_of(obj: dict, _now: datetime) -> str:
    for ref in as_array(_meta(obj).get("ownerReferences")):
        ref = as_object(ref)
        if ref.get("controller"):
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            kind = str(ref.get("kind", "")).lower()
            return (
                f"{kind}.{group}/{ref.get('name', '')}"
                if group
                else f"{kind}/{ref.get('name', '')}"
            )
    return NONE


def _revision_columns() -> list[Column]:
    return [
        name_column(),
        _col("Controller", _controller_of, desc="The controller of the revision."),
        _col(
            "Revision",
            lambda o, _n: _int(o.get("revision")),
            type_="integer",
            desc="The revision number.",
        ),
        _age_column(),
    ]


# -- storage ------------------------------------------------------------------------------

_ACCESS_MODES = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def _access_modes(modes: Any) -> str:
    short = [_ACCESS_MODES.get(str(m), str(m)) for m in as_array(modes)]
    return ",".join(short)


def _claim_capacity(obj: dict, _now: datetime) -> str:
    if _status(obj).get("phase") != "Bound":
        return ""
    return str(as_object(_status(obj).get("capacity")).get("storage", ""))


def _phase_column(noun: str) -> Column:
    return _col("Status", _status_cell("phase", "Pending"), desc=f"The phase of the {noun}.")


def _volume_mode_column(noun: str) -> Column:
    return _col(
        "VolumeMode",
        _spec_cell("volumeMode", "Filesystem"),
        priority=1,
        desc=f"The volume mode of the {noun}.",
    )


def _attributes_class_column(desc: str) -> Column:
    return _col("VolumeAttributesClass", _spec_cell("volumeAttributesClassName", NONE), desc=desc)


def _pvc_columns() -> list[Column]:
    return [
        name_column(),
        _phase_column("claim"),
        _col(
            "Volume",
            _spec_cell("volumeName", ""),
            desc="The binding reference to the PersistentVolume backing this claim.",
        ),
        _col("Capacity", _claim_capacity, desc="The actual resources of the underlying volume."),
        _col(
            "Access Modes",
            lambda o, _n: _access_modes(_status(o).get("accessModes")),
            desc="The actual access modes the volume backing the PVC has.",
        ),
        _col(
            "StorageClass",
            _spec_cell("storageClassName", NONE),
            desc="Name of the StorageClass required by the claim.",
        ),
        _attributes_class_column("Name of the VolumeAttributesClass used by the claim."),
        _age_column(),
        _volume_mode_column("claim"),
    ]


def _pv_claim(obj: dict, _now: datetime) -> str:
    ref = as_object(_spec(obj).get("claimRef"))
    if not ref:
        return ""
    return f"{ref.get('namespace', '')}/{ref.get('name', '')}"


def _pv_columns() -> list[Column]:
    return [
        name_column(),
        _col(
            "Capacity",
            lambda o, _n: str(as_object(_spec(o).get("capacity")).get("storage", "")),
            desc="The capacity of the volume.",
        ),
        _col(
            "Access Modes",
            lambda o, _n: _access_modes(_spec(o).get("accessModes")),
            desc="The access modes of the volume.",
        ),
        _col(
            "Reclaim Policy",
            _spec_cell("persistentVolumeReclaimPolicy", "Retain"),
            desc="What happens to the volume when released from its claim.",
        ),
        _phase_column("volume"),
        _col("Claim", _pv_claim, desc="The claim bound to the volume."),
        _col(
            "StorageClass",
            _spec_cell("storageClassName", ""),
            desc="The storage class of the volume.",
        ),
        _attributes_class_column("The volume attributes class of the volume."),
        _col(
            "Reason",
            _status_cell("reason", ""),
            desc="Why the volume is in this phase.",
        ),
        _age_column(),
        _volume_mode_column("volume"),
    ]


_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def _storageclass_name(obj: dict, _now: datetime) -> str:
    name = str(_meta(obj).get("name", ""))
    annotations = as_object(_meta(obj).get("annotations"))
    is_default = annotations.get(_DEFAULT_CLASS) == "true"
    return f"{name} (default)" if is_default else name


def _storageclass_columns() -> list[Column]:
    return [
        Column(
            "Name",
            "string",
            _storageclass_name,
            format="name",
            description="Name of the storage class.",
        ),
        _col(
            "Provisioner",
            _top_cell("provisioner", ""),
            desc="The volume plugin that provisions volumes.",
        ),
        _col(
            "ReclaimPolicy",
            _top_cell("reclaimPolicy", "Delete"),
            desc="What happens to released volumes.",
        ),
        _col(
            "VolumeBindingMode",
            _top_cell("volumeBindingMode", "Immediate"),
            desc="When volumes are bound and provisioned.",
        ),
        _col(
            "AllowVolumeExpansion",
            lambda o, _n: bool(o.get("allowVolumeExpansion", False)),
            desc="Whether volumes of this class may be expanded.",
        ),
        _age_column(),
    ]


# -- policy, coordination, events, rbac, CRDs ------------------------------------------------


def _pdb_bound(key: str) -> Cell:
    def cell(obj: dict, _now: datetime) -> str:
        value = _spec(obj).get(key)
        return "N/A" if value is None else str(value)

    return cell


def _pdb_columns() -> list[Column]:
    return [
        name_column(),
        _col(
            "Min Available",
            _pdb_bound("minAvailable"),
            desc="The minimum number of pods that must be available.",
        ),
        _col(
            "Max Unavailable",
            _pdb_bound("maxUnavailable"),
            desc="The maximum number of pods that may be unavailable.",
        ),
        _col(
            "Allowed Disruptions",
            _status_int("disruptionsAllowed"),
            type_="integer",
            desc="Calculated number of pods that may be disrupted at this time.",
        ),
        _age_column(),
    ]


def _event_object(obj: dict, _now: datetime) -> str:
    involved = as_object(obj.get("involvedObject"))
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


def _event_last_seen(obj: dict, now: datetime) -> str:
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        if parse_time(obj.get(key)):
            return since(obj[key], now)
    return age(obj, now)


def _event_first_seen(obj: dict, now: datetime) -> str:
    for key in ("firstTimestamp", "eventTime"):
        if parse_time(obj.get(key)):
            return since(obj[key], now)
    return age(obj, now)


def _event_source(obj: dict, _now: datetime) -> str:
    source = as_object(obj.get("source"))
    component = source.get("component") or obj.get("reportingComponent") or ""
    host = source.get("host")
    return f"{component}, {host}" if host else str(component)


def _event_columns() -> list[Column]:
    return [
        _col("Last Seen", _event_last_seen, desc="Time when this event was last observed."),
        _col("Type", _top_cell("type", ""), desc="Type of this event (Normal, Warning)."),
        _col("Reason", _top_cell("reason", ""), desc="Why the action was taken."),
        _col("Object", _event_object, desc="The object that this event is about."),
        _col(
            "Subobject",
            lambda o, _n: as_object(o.get("involvedObject")).get("fieldPath", ""),
            priority=1,
            desc="The field of the object this event is about.",
        ),
        _col("Source", _event_source, priority=1, desc="The component reporting this event."),
        _col(
            "Message",
            _top_cell("message", ""),
            desc="A human-readable description of the status of this operation.",
        ),
        _col(
            "First Seen",
            _event_first_seen,
            priority=1,
            desc="The time at which the event was first recorded.",
        ),
        _col(
            "Count",
            lambda o, _n: _int(o.get("count")) or 1,
            type_="integer",
            priority=1,
            desc="The number of times this event has occurred.",
        ),
        Column(
            "Name",
            "string",
            lambda o, _n: _meta(o).get("name", ""),
            format="name",
            description="Name of the event.",
            priority=1,
        ),
    ]


def _lease_columns() -> list[Column]:
    return [
        name_column(),
        _col(
            "Holder",
            _spec_cell("holderIdentity", ""),
            desc="The identity of the holder of the lease.",
        ),
        _age_column(),
    ]


def _created_at(obj: dict, _now: datetime) -> str:
    return str(_meta(obj).get("creationTimestamp", ""))


def _created_at_columns() -> list[Column]:
    return [
        name_column(),
        Column(
            "Created At", "date", _created_at, description="Time at which the object was created."
        ),
    ]


def _subjects(kind: str) -> Cell:
    def cell(obj: dict, _now: datetime) -> str:
        names = []
        for subject in as_array(obj.get("subjects")):
            subject = as_object(subject)
            if subject.get("kind") != kind:
                continue
            if kind == "ServiceAccount":
                names.append(f"{subject.get('namespace', '')}/{subject.get('name', '')}")
            else:
                names.append(str(subject.get("name", "")))
        return ",".join(names)

    return cell


def _role_ref(obj: dict, _now: datetime) -> str:
    ref = as_object(obj.get("roleRef"))
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _binding_columns() -> list[Column]:
    return [
        name_column(),
        _col(
            "Role",
            _role_ref,
            desc="The role the binding refers to.",
        ),
        _age_column(),
        _col("Users", _subjects("User"), priority=1, desc="Users in the binding."),
        _col("Groups", _subjects("Group"), priority=1, desc="Groups in the binding."),
        _col(
            "ServiceAccounts",
            _subjects("ServiceAccount"),
            priority=1,
            desc="ServiceAccounts in the binding.",
        ),
    ]


_RBAC = "rbac.authorization.k8s.io"

BUILTIN_PRINTERS: dict[tuple[str, str], list[Column]] = {
    ("", "Pod"): _pod_columns(),
    ("", "Node"): _node_columns(),
    ("", "Namespace"): [
        name_column(),
        _col(
            "Status",
            _status_cell("phase", "Active"),
            desc="The status of the namespace",
        ),
        _age_column(),
    ],
    ("", "Service"): _service_columns(),
    ("", "Endpoints"): [
        name_column(),
        _col("Endpoints", _endpoints, desc="Endpoints of the service."),
        _age_column(),
    ],
    ("discovery.k8s.io", "EndpointSlice"): [
        name_column(),
        _col(
            "AddressType",
            lambda o, _n: str(o.get("addressType", "")),
            desc="The type of addresses in the slice.",
        ),
        _col("Ports", _slice_ports, desc="The ports of the slice."),
        _col("Endpoints", _slice_endpoints, desc="The addresses of the slice's endpoints."),
        _age_column(),
    ],
    ("", "ConfigMap"): [
        name_column(),
        _col(
            "Data",
            _count("data", "binaryData"),
            type_="integer",
            desc="Number of keys in the config map.",
        ),
        _age_column(),
    ],
    ("", "Secret"): [
        name_column(),
        _col("Type", _top_cell("type", "Opaque"), desc="The type of the secret"),
        _col("Data", _count("data"), type_="integer", desc="Number of keys in the secret."),
        _age_column(),
    ],
    ("", "ServiceAccount"): [
        name_column(),
        _col(
            "Secrets",
            lambda o, _n: len(as_array(o.get("secrets"))),
            type_="integer",
            desc="Number of secrets of the service account.",
        ),
        _age_column(),
    ],
    ("", "PersistentVolumeClaim"): _pvc_columns(),
    ("", "PersistentVolume"): _pv_columns(),
    ("", "Event"): _event_columns(),
    ("apps", "Deployment"): _deployment_columns(),
    ("apps", "ReplicaSet"): _replicaset_columns(),
    ("apps", "StatefulSet"): _statefulset_columns(),
    ("apps", "DaemonSet"): _daemonset_columns(),
    ("apps", "ControllerRevision"): _revision_columns(),
    ("storage.k8s.io", "StorageClass"): _storageclass_columns(),
    ("policy", "PodDisruptionBudget"): _pdb_columns(),
    ("coordination.k8s.io", "Lease"): _lease_columns(),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _created_at_columns(),
    (_RBAC, "Role"): _created_at_columns(),
    (_RBAC, "ClusterRole"): _created_at_columns(),
    (_RBAC, "RoleBinding"): _binding_columns(),
    (_RBAC, "ClusterRoleBinding"): _binding_columns(),
}

"""The ``Application`` resource: the user's whole interface to Milkyway.

An Application lists components (a ZooKeeper ensemble, a Kafka cluster, Flink managers),
each with a config profile, a version and a size per zone per region. The spec is what the
user writes; the status is what the operator observed and decided (including the stable
member identities rendering must keep).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from milkyway.model.base import (
    API_VERSION,
    Condition,
    DnsLabel,
    Image,
    Model,
    ObjectMeta,
    ParamMap,
    Quantity,
    VersionString,
)
from milkyway.model.crd_schema import AGE_COLUMN, CrdInfo, PrinterColumn
from milkyway.model.health import HealthCheckSpec, HealthStatus
from milkyway.model.quantity import quantity_value

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""An RFC 1123 subdomain: the form of a StorageClass name."""

LOCAL_PATH_PATTERN = r"^/[A-Za-z0-9._/-]*$"
"""An absolute host path of plain characters: no spaces, quotes or control characters."""

WorkloadPattern = Literal["statefulset", "deployment", "deploymentset", "pods"]
"""The four deploy patterns: StatefulSet, Deployment, one Deployment per member, or Pods on
local PersistentVolumes managed by the operator."""

WORKLOAD_PATTERNS: tuple[WorkloadPattern, ...] = (
    "statefulset",
    "deployment",
    "deploymentset",
    "pods",
)

FLOW_OPERATIONS: tuple[str, ...] = (
    "provision",
    "scale-out",
    "scale-in",
    "config-update",
    "rolling-upgrade",
    "restart",
    "replace-member",
    "remediate",
    "decommission",
    "health-check",
)
"""Lifecycle operations the operator runs as flows; each may be given a flow of one's own."""

STEP_OPERATIONS: tuple[str, ...] = ("zone-apply", "roll-members", "restart-member", "member-health")
"""Steps shared by the lifecycle flows that a ComponentType may replace everywhere at once
(e.g. ``member-health``: Kafka also waits for no under-replicated partitions)."""

MAX_ZONE_SIZE = 100
REGION_PATTERN = "^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$"


class Resources(Model):
    """Compute resources of the component's main container."""

    cpu: Quantity | None = None
    """CPU request, e.g. ``500m`` or ``2``."""
    memory: Quantity | None = None
    """Memory request, e.g. ``2Gi``."""
    cpu_limit: Quantity | None = None
    """CPU limit; none by default so that bursts are not throttled."""
    memory_limit: Quantity | None = None
    """Memory limit; defaults to the memory request."""

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        """A member cluster refuses a pod whose limit is below its request; say so here."""
        for request, limit, name in (
            (self.cpu, self.cpu_limit, "cpu"),
            (self.memory, self.memory_limit, "memory"),
        ):
            if request is None or limit is None:
                continue
            wanted, allowed = quantity_value(request), quantity_value(limit)
            if wanted is not None and allowed is not None and allowed < wanted:
                raise ValueError(
                    f"{name}Limit {limit} is below the {name} request {request}; Kubernetes "
                    f"refuses such a pod (raise {name}Limit to at least {request} or lower "
                    f"{name})"
                )
        return self


class Storage(Model):
    """Persistent storage of each member."""

    size: Quantity | None = None
    """Capacity of each member's volume, e.g. ``10Gi``."""
    storage_class: str | None = Field(
        default=None, min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN
    )
    """StorageClass of the volume claims; the cluster default when unset."""
    local_path: str | None = Field(default=None, max_length=4096, pattern=LOCAL_PATH_PATTERN)
    """Host directory of local PersistentVolumes (``pods`` workload only)."""

    @field_validator("size")
    @classmethod
    def _positive_size(cls, value: str | None) -> str | None:
        if value is not None and (quantity_value(value) or 0) <= 0:
            raise ValueError(f"volume size {value} must be greater than zero, e.g. 10Gi")
        return value

    @field_validator("local_path")
    @classmethod
    def _no_parent_segments(cls, value: str | None) -> str | None:
        if value is not None and ".." in value.split("/"):
            raise ValueError(
                f"local path {value!r} climbs out of its directory with '..'; write the "
                "absolute path it means"
            )
        return value


class Zone(Model):
    """One zone (one Kubernetes cluster) of a region, and what runs there."""

    name: DnsLabel
    """Zone name; it matches the ``spec.zone`` of a registered Cluster."""
    size: int = Field(ge=0, le=MAX_ZONE_SIZE, strict=True)
    """Number of members in this zone; 0 keeps the zone listed but empty."""
    cluster: DnsLabel | None = None
    """Name of the Cluster resource to deploy to, when several serve this zone."""
    version: VersionString | None = None
    """Version override for this zone (used while a rolling upgrade crosses zones)."""
    config: DnsLabel | None = None
    """Config profile override for this zone."""
    params: ParamMap = Field(default_factory=dict)
    """Params overriding the component's params in this zone."""
    image: Image | None = None
    """Container image override for this zone."""
    resources: Resources | None = None
    """Resource override for this zone."""
    storage: Storage | None = None
    """Storage override for this zone."""
    nodes: list[DnsLabel] = Field(default_factory=list)
    """Nodes the members are pinned to, one per member (``pods`` workload)."""


class Region(Model):
    """A region: a group of zones."""

    name: str = Field(min_length=1, max_length=63, pattern=REGION_PATTERN)
    """Region name, e.g. ``NA``."""
    zones: list[Zone] = Field(min_length=1)
    """Zones of the region."""


class Component(Model):
    """One data system of the Application, e.g. a ZooKeeper ensemble spanning zones."""

    name: DnsLabel
    """Unique name within the Application; also the source of the inferred type."""
    type: DnsLabel | None = None
    """ComponentType name; inferred from the name (``zookeeper1`` is a ``zookeeper``)."""
    config: DnsLabel = "default"
    """Config profile of the ComponentType."""
    version: VersionString
    """Version of the software; one of the versions the ComponentType knows."""
    uses: dict[str, DnsLabel] = Field(default_factory=dict)
    """Explicit bindings: dependency name to component name, e.g. ``zookeeper: zookeeper2``."""
    params: ParamMap = Field(default_factory=dict)
    """Params overriding the profile's."""
    image: Image | None = None
    """Container image overriding the ComponentType's image for the version."""
    workload: WorkloadPattern | None = None
    """Deploy pattern; the ComponentType's default when unset."""
    resources: Resources | None = None
    """Compute resources overriding the profile's."""
    storage: Storage | None = None
    """Storage overriding the profile's."""
    regions: list[Region] = Field(min_length=1)
    """Where the component runs and how many members each zone has."""
    flows: dict[str, DnsLabel] = Field(default_factory=dict)
    """Operation (``provision``, ``config-update``, …) to the name of the Flow to run for it
    instead of the ComponentType's or Milkyway's; see docs/operator-flows.md."""

    @field_validator("flows")
    @classmethod
    def _known_operations(cls, value: dict[str, str]) -> dict[str, str]:
        return check_flow_operations(value, FLOW_OPERATIONS)


def check_flow_operations(value: dict[str, str], known: tuple[str, ...]) -> dict[str, str]:
    """Reject an unknown operation key, naming it and the operations that can be used."""
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise ValueError(
            f"unknown operation {unknown[0]!r} in flows; use one of: {', '.join(known)}"
        )
    return value


class Approvers(Model):
    """Who may approve a flow's approval step (never the requester of the run)."""

    users: list[str] = Field(default_factory=list)
    """User names allowed to decide."""
    groups: list[str] = Field(default_factory=list)
    """Groups whose members may decide."""


class ReplacementPolicy(Model):
    """When a member whose node or disk is lost is moved onto a new, empty volume.

    Every field left out is taken from the ComponentType's policy, then from the default."""

    grace_period_seconds: int | None = Field(default=None, ge=0, le=30 * 86400)
    """Seconds a member's node must stay lost (or its disk failed) before its local
    volume is replaced, or its pod on network storage is rescheduled; default 600, longer
    than Kubernetes' own eviction (300 s), so a node that returns keeps its data."""
    require_approval: bool | None = None
    """True: a replacement that deletes a member's volume waits for an approval step
    decided by one of ``approvers``; default false."""
    approvers: Approvers | None = None
    """Who may approve a replacement (needed with ``requireApproval``)."""
    on_critical_disk: Literal["replace", "alert"] | None = None
    """What a member's agent reporting a volume critical or failed leads to: ``replace``
    the member onto a new volume (after the grace period), or only ``alert`` (the pod's
    DiskAlert condition and Event); default: the type's ``agent.onCriticalDisk``."""


class ApplicationSpec(Model):
    """What the user wants to run."""

    components: list[Component] = Field(min_length=1)
    """The components, in any order; they are provisioned in dependency order."""
    replacement: ReplacementPolicy | None = None
    """When members on a lost node or failed disk are replaced, for every component;
    overrides the ComponentType's ``replacement`` field by field."""
    health_check: HealthCheckSpec = Field(default_factory=HealthCheckSpec)
    """The scheduled health check (default: every 5 minutes, every check)."""


class MemberPod(Model):
    """One member's pod as the member cluster last reported it."""

    name: str = Field(max_length=253)
    """The pod's name."""
    node: str | None = Field(default=None, max_length=253)
    """The node it is scheduled on; absent while unscheduled."""
    ready: bool = False
    """Whether the pod is Ready."""
    version: str | None = Field(default=None, max_length=63)
    """The version the pod runs (its ``app.kubernetes.io/version`` label)."""


class ZoneStatus(Model):
    """Observed state of one component in one zone."""

    desired: int = 0
    """Members the spec asks for."""
    ready: int = 0
    """Members that are ready."""
    updated: int = 0
    """Ready members running the desired version and config."""
    version: VersionString | None = None
    """Version running on every ready member, when uniform."""
    config_hash: str | None = None
    """Config hash of the running pod templates."""
    pods: list[MemberPod] = Field(default_factory=list)
    """Where each member runs: its pod, node and readiness, by pod name."""


class ComponentStatus(Model):
    """Observed state of one component."""

    zones: dict[str, ZoneStatus] = Field(default_factory=dict)
    """Per zone state, keyed by zone name."""


class ZoneMembers(Model):
    """Member identities of one component in one zone."""

    ids: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list)
    """Identity of member ``i`` of the zone (ordinal ``i``)."""
    retired: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list)
    """Identities released by a shrink, kept for this zone: their volumes may still exist."""


class MemberAssignment(Model):
    """Stable identities (ZooKeeper ``myid``, Kafka ``broker.id``) of one component."""

    next_id: int = Field(default=1, ge=0)
    """Lowest identity never handed out."""
    zones: dict[str, ZoneMembers] = Field(default_factory=dict)
    """Identities per zone."""


ApplicationPhase = Literal[
    "Pending", "Provisioning", "Running", "Updating", "Degraded", "Failed", "Deleting"
]


class LostMember(Model):
    """A member on a lost node or failed disk, and what the operator will do about it."""

    component: str
    zone: str
    member: str
    """Pod (or member Deployment) name."""
    node: str = ""
    """The lost node ("" for a failed disk on a live node)."""
    reason: str
    """``node <name> lost`` or ``disk failed``."""
    since: str
    """RFC 3339 time the node stopped being Ready (or the member, on a failed disk)."""
    action: Literal["replace-volume", "reschedule", "none"]
    """``replace-volume``: a new, empty volume (local data on the lost node);
    ``reschedule``: the pod moves with its network-attached volume; ``none``: the spec
    pins it to the lost node."""
    at: str
    """RFC 3339 time the action is due: ``since`` plus the grace period."""
    note: str = ""
    """Why the action waits beyond ``at`` (approval, members holding data, the spec)."""


class FlowFailure(Model):
    """The last run of a component's flow failed: why, and when it is tried again."""

    component: str | None = None
    flow: str
    run: str
    """The FlowRun's name."""
    attempt: int = 1
    """Failed attempts of this flow in a row."""
    message: str = ""
    """The failure reason the run reported."""
    finished_at: str | None = None
    retry_at: str | None = None
    """RFC 3339 time of the next attempt at the earliest (exponential back-off)."""


class ApplicationStatus(Model):
    """What the operator observed and decided; written by the operator only."""

    phase: ApplicationPhase | None = None
    """Summary of the Application's lifecycle."""
    conditions: list[Condition] = Field(default_factory=list)
    """Latest observations (Ready, Progressing, …)."""
    components: dict[str, ComponentStatus] = Field(default_factory=dict)
    """Per component, per zone state."""
    current_flow: str | None = None
    """Name of the FlowRun currently changing the Application."""
    ready_members: str | None = None
    """Ready members out of desired ones over every component and zone, e.g. ``12/15``."""
    observed_generation: int | None = None
    """The ``metadata.generation`` last acted upon."""
    members: dict[str, MemberAssignment] = Field(default_factory=dict)
    """Stable member identities per component; rendering reads them back."""
    lost_members: list[LostMember] = Field(default_factory=list)
    """Members on a lost node or failed disk, and the decision about each."""
    failed_flows: list[FlowFailure] = Field(default_factory=list)
    """Components whose last flow failed, with the reason and the next attempt."""
    health: HealthStatus | None = None
    """The last scheduled health report (see ``spec.healthCheck``)."""


class Application(Model):
    """A multi-component data system deployed across regions and zones."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        plural="applications",
        short_names=("mwapp", "mwa"),
        printer_columns=(
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn("Ready", ".status.readyMembers", description="ready/desired members"),
            PrinterColumn(
                "Health",
                ".status.health.status",
                description="the latest health check's verdict (empty until one reports)",
            ),
            PrinterColumn("Flow", ".status.currentFlow"),
            AGE_COLUMN,
        ),
    )

    api_version: Literal["milkyway.ebay.com/v1"] = API_VERSION
    kind: Literal["Application"] = "Application"
    metadata: ObjectMeta
    spec: ApplicationSpec
    status: ApplicationStatus = Field(default_factory=ApplicationStatus)

    def component(self, name: str) -> Component:
        """The component called ``name`` (``KeyError`` if none)."""
        for component in self.spec.components:
            if component.name == name:
                return component
        raise KeyError(name)

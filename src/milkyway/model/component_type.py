"""The ``ComponentType`` resource: the blueprint of one kind of component.

A ComponentType says everything Milkyway needs to deploy and operate a data system without
code: images per version, ports, config file templates (Jinja2, rendered in a sandbox),
config profiles, the dependencies it needs and what it exports to dependants, how many
members may be down at once, health probes, and which params can change without a restart.
Built-in types ship with the package as data in exactly this format.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from milkyway.model.agent_spec import AgentSpec
from milkyway.model.application import (
    FLOW_OPERATIONS,
    STEP_OPERATIONS,
    ReplacementPolicy,
    Resources,
    Storage,
    WorkloadPattern,
    check_flow_operations,
)
from milkyway.model.base import (
    API_VERSION,
    DnsLabel,
    Image,
    Model,
    ObjectMeta,
    ParamMap,
    VersionString,
)
from milkyway.model.crd_schema import AGE_COLUMN, CrdInfo, PrinterColumn
from milkyway.model.zone_policy import zone_policy_problems

PARAM_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]*$"
_DEFAULT_WORKLOADS: tuple[WorkloadPattern, ...] = ("statefulset", "deploymentset", "pods")


class VersionImage(Model):
    """A supported version and the image that runs it."""

    version: VersionString
    """Version as users write it, e.g. ``3.4.7``."""
    image: Image
    """Container image of that version."""


class Port(Model):
    """A port the main container listens on."""

    name: DnsLabel = Field(max_length=15)
    """Port name (IANA service name rules: at most 15 characters)."""
    port: int = Field(ge=1, le=65535)
    """Port number."""
    protocol: Literal["TCP", "UDP"] = "TCP"
    """Transport protocol."""


class ConfigFile(Model):
    """A config file rendered from a Jinja2 template into the component's ConfigMap."""

    name: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """File name, mounted under ``/etc/milkyway/config``."""
    template: str
    """Jinja2 template; see docs/component-types.md for the variables it can use."""


class ParamSpec(Model):
    """A param the type's templates read."""

    name: str = Field(min_length=1, max_length=128, pattern=PARAM_NAME_PATTERN)
    """Param name, as used in templates (``params.<name>``)."""
    type: Literal["string", "integer", "number", "boolean"] = "string"
    """Value type; values of another type are rejected."""
    default: Any = None
    """Value used when neither the profile nor the Application sets one."""
    hot_reload: bool = False
    """True if a change is applied without restarting members."""
    description: str = ""
    """What the param controls."""


class Profile(Model):
    """A named set of param values, resources and storage: ``default``, ``production``, …"""

    description: str = ""
    """When to pick this profile."""
    params: ParamMap = Field(default_factory=dict)
    """Param values of the profile."""
    resources: Resources | None = None
    """Compute resources of the profile."""
    storage: Storage | None = None
    """Storage of the profile."""


class Dependency(Model):
    """Another component this type needs, bound by ``uses`` or inferred."""

    name: DnsLabel
    """Binding name, used in ``uses`` and in templates (``deps.<name>``)."""
    type: DnsLabel
    """ComponentType the bound component must have."""
    required: bool = True
    """False if the type works without it (e.g. Flink HA without ZooKeeper)."""
    required_above_size: int | None = Field(default=None, ge=1)
    """An optional dependency becomes required above this total size (several Flink
    JobManagers need ZooKeeper to elect a leader)."""
    description: str = ""
    """What the dependency is used for."""


class Export(Model):
    """A value dependants can read (``deps.<binding>.<name>``), e.g. a connect string."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    """Export name."""
    template: str
    """Jinja2 template of the value."""


class ZoneSafety(Model):
    """Why a whole zone may go down at once: the software places a partition's replicas
    across zones (racks) and accepts writes with fewer in-sync replicas than it keeps, so
    one zone down leaves every partition writable. Names the params that say so."""

    replication_factor: str = Field(min_length=1)
    """Integer param: copies kept of each partition (Kafka ``replicationFactor``)."""
    min_in_sync: str = Field(min_length=1)
    """Integer param: copies that must acknowledge a write (Kafka ``minInsyncReplicas``)."""


class DisruptionPolicy(Model):
    """How many members may be down at once; the operator enforces it on every flow."""

    kind: Literal["quorum", "rackAware", "zone", "maxUnavailable"] = "maxUnavailable"
    """``quorum``: never more than (n-1)/2 members down across all zones; ``rackAware``: only
    one zone at a time; ``zone``: a whole zone's members at once, never members of two zones
    (needs ``zoneSafety``); ``maxUnavailable``: at most ``maxUnavailable`` per zone."""
    max_unavailable: int = Field(default=1, ge=1)
    """Members that may be down at once within one zone (for ``zone``: when a whole zone
    may not go, because the component has one zone or too few replicas per partition)."""
    zone_safety: ZoneSafety | None = None
    """For ``zone``: the params that make one zone down safe."""


class Sizing(Model):
    """Allowed ensemble sizes (all zones together)."""

    min: int = Field(default=1, ge=0)
    """Smallest total size."""
    max: int = Field(default=1000, ge=1)
    """Largest total size."""
    odd: bool = False
    """True for majority-quorum systems: an even size adds cost but no tolerance."""


class Identity(Model):
    """Stable per-member identities, unique across zones (ZooKeeper ``myid``, ``broker.id``)."""

    param: str = Field(min_length=1)
    """Name of the identity in the software, for documentation and templates."""
    min: int = Field(default=1, ge=0)
    """First identity handed out."""
    max: int = Field(default=2147483647, ge=1)
    """Largest valid identity (ZooKeeper: 255)."""


class ProbeSpec(Model):
    """A health probe of the main container; exactly one of exec, tcpPort, httpGet."""

    exec: list[str] | None = None
    """Command run in the container; exit 0 means healthy."""
    tcp_port: DnsLabel | None = None
    """Name of a port that must accept connections."""
    http_path: str | None = None
    """HTTP path that must answer 2xx/3xx, on ``httpPort``."""
    http_port: DnsLabel | None = None
    """Name of the port of ``httpPath``."""
    initial_delay_seconds: int = Field(default=10, ge=0)
    period_seconds: int = Field(default=10, ge=1)
    timeout_seconds: int = Field(default=5, ge=1)
    failure_threshold: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _exactly_one_handler(self) -> ProbeSpec:
        handlers = [self.exec is not None, self.tcp_port is not None, self.http_path is not None]
        if sum(handlers) != 1:
            raise ValueError("a probe needs exactly one of exec, tcpPort or httpPath")
        if self.http_path is not None and self.http_port is None:
            raise ValueError("httpPath needs httpPort")
        return self


class Probes(Model):
    """Health probes of the main container."""

    readiness: ProbeSpec | None = None
    liveness: ProbeSpec | None = None
    startup: ProbeSpec | None = None


class ContainerSpec(Model):
    """How the main container runs."""

    start: str = Field(min_length=1)
    """Shell script (Jinja2 template) that starts the software in the foreground."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables (values are Jinja2 templates)."""
    user: int = Field(default=1000, ge=1)
    """Non-root uid the software runs as."""
    group: int = Field(default=1000, ge=1)
    """Non-root gid, also the volumes' fsGroup."""
    read_only_root_filesystem: bool = True
    """False only for software that must write outside its volumes."""
    writable_paths: list[str] = Field(default_factory=lambda: ["/tmp"])
    """Paths given an emptyDir so the root filesystem can stay read-only."""
    data_path: str = Field(default="/data", pattern="^/")
    """Mount path of the member's data volume."""
    add_capabilities: list[str] = Field(default_factory=list)
    """Capabilities added back after dropping ALL; each needs a reason in the type's docs."""
    service_account_token: bool = False
    """True if the software calls the Kubernetes API itself."""
    termination_grace_period_seconds: int = Field(default=60, ge=0)
    """Time to shut down cleanly (flush logs, hand over leadership)."""


class ComponentTypeSpec(Model):
    """Everything Milkyway needs to deploy and operate one kind of component."""

    description: str = ""
    """What the software is."""
    workload: WorkloadPattern = "statefulset"
    """Default deploy pattern."""
    workloads: list[WorkloadPattern] = Field(default_factory=lambda: list(_DEFAULT_WORKLOADS))
    """Deploy patterns the software supports."""
    versions: list[VersionImage] = Field(min_length=1)
    """Supported versions, oldest first."""
    ports: list[Port] = Field(default_factory=list)
    """Ports of the main container."""
    config_files: list[ConfigFile] = Field(default_factory=list)
    """Config files rendered per zone into a ConfigMap."""
    params: list[ParamSpec] = Field(default_factory=list)
    """Params the templates read."""
    profiles: dict[str, Profile] = Field(default_factory=dict)
    """Config profiles; ``default`` is required."""
    dependencies: list[Dependency] = Field(default_factory=list)
    """Components this type needs."""
    exports: list[Export] = Field(default_factory=list)
    """Values offered to dependants."""
    disruption: DisruptionPolicy = Field(default_factory=DisruptionPolicy)
    """How many members may be down at once."""
    replacement: ReplacementPolicy = Field(default_factory=ReplacementPolicy)
    """When members on a lost node or failed disk are replaced on a new volume."""
    sizing: Sizing = Field(default_factory=Sizing)
    """Allowed total sizes."""
    identity: Identity | None = None
    """Stable member identities, for software that needs them."""
    probes: Probes = Field(default_factory=Probes)
    """Health probes."""
    container: ContainerSpec
    """How the main container runs."""
    agent: AgentSpec = Field(default_factory=AgentSpec)
    """What the sidecar agent of each member checks, serves and may do."""
    flows: dict[str, DnsLabel] = Field(default_factory=dict)
    """Operation or shared step (``member-health``, ``restart-member``, …) to the name of
    the Flow replacing Milkyway's for every component of this type."""

    @field_validator("flows")
    @classmethod
    def _known_operations(cls, value: dict[str, str]) -> dict[str, str]:
        return check_flow_operations(value, FLOW_OPERATIONS + STEP_OPERATIONS)

    @model_validator(mode="after")
    def _consistent(self) -> ComponentTypeSpec:
        problems: list[str] = []
        if "default" not in self.profiles:
            problems.append("profiles must include 'default'")
        if self.workload not in self.workloads:
            problems.append(f"workload {self.workload!r} is not among workloads {self.workloads}")
        if self.identity is not None and "deployment" in self.workloads:
            problems.append("a type with member identities cannot use the deployment workload")
        for label, names in (
            ("versions", [v.version for v in self.versions]),
            ("ports", [p.name for p in self.ports]),
            ("configFiles", [f.name for f in self.config_files]),
            ("params", [p.name for p in self.params]),
            ("dependencies", [d.name for d in self.dependencies]),
            ("exports", [e.name for e in self.exports]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                problems.append(f"duplicate {label}: {', '.join(duplicates)}")
        ports = {p.name for p in self.ports}
        for kind in ("readiness", "liveness", "startup"):
            probe = getattr(self.probes, kind)
            for port in (probe.tcp_port, probe.http_port) if probe else ():
                if port is not None and port not in ports:
                    problems.append(f"{kind} probe uses undeclared port {port!r}")
        known = {p.name for p in self.params}
        for profile_name, profile in self.profiles.items():
            unknown = sorted(set(profile.params) - known)
            if unknown:
                problems.append(f"profile {profile_name!r} sets unknown params {unknown}")
        problems.extend(zone_policy_problems(self))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def image_for(self, version: str) -> str | None:
        """The image of ``version``, or ``None`` if the type does not know it."""
        for item in self.versions:
            if item.version == version:
                return item.image
        return None

    def param(self, name: str) -> ParamSpec | None:
        for spec in self.params:
            if spec.name == name:
                return spec
        return None


class ComponentType(Model):
    """The blueprint of one kind of component (cluster-scoped)."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        plural="componenttypes",
        scope="Cluster",
        short_names=("mwct", "ctype"),
        printer_columns=(
            PrinterColumn("Workload", ".spec.workload"),
            PrinterColumn("Disruption", ".spec.disruption.kind"),
            AGE_COLUMN,
        ),
    )

    api_version: Literal["milkyway.ebay.com/v1"] = API_VERSION
    kind: Literal["ComponentType"] = "ComponentType"
    metadata: ObjectMeta
    spec: ComponentTypeSpec

    @property
    def name(self) -> str:
        return self.metadata.name

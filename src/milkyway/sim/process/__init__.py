"""Real processes in simulated pods: image mapping, sandboxes, volumes, probes, restarts."""

from milkyway.sim.process.handle import ContainerHandle
from milkyway.sim.process.images import (
    ImageMap,
    ImageRule,
    builtin_rules,
    load_rules_file,
    parse_run,
)
from milkyway.sim.process.network import PodNetwork
from milkyway.sim.process.runtime import ClusterFacts, ProcessRuntime

__all__ = [
    "ClusterFacts",
    "ContainerHandle",
    "ImageMap",
    "ImageRule",
    "PodNetwork",
    "ProcessRuntime",
    "builtin_rules",
    "load_rules_file",
    "parse_run",
]

"""Tunables of the simulated control plane: stage delays, timeouts, seeds.

Tests use :meth:`ControlPlaneConfig.fast` (zero delays: a pod is Ready in the same pass
that starts it) and the demo :meth:`ControlPlaneConfig.realistic` (seconds, with
jitter). A seed makes every jittered delay and generated name reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StageDelays:
    """Seconds a kubelet spends in each stage; ``jitter`` adds up to that fraction."""

    creating: float = 0.0
    """Scheduled -> Running: image pulled, volumes mounted, containers started."""
    ready: float = 0.0
    """Running -> Ready (readiness probes pass)."""
    terminating: float = 0.0
    """Upper bound on a graceful deletion; the pod's own grace period caps it too."""
    jitter: float = 0.0
    running: float = 0.0
    """Running -> Succeeded for pods that run to completion (restartPolicy Never or
    OnFailure, e.g. a Job's); a pod's ``sim.milkyway.io/run-seconds`` overrides it."""

    def __post_init__(self) -> None:
        for name in ("creating", "ready", "terminating", "jitter", "running"):
            if getattr(self, name) < 0:
                raise ValueError(f"stage delay {name}={getattr(self, name)} must be 0 or more")


@dataclass(frozen=True)
class ControlPlaneConfig:
    delays: StageDelays = field(default_factory=StageDelays)
    heartbeat_interval: float = 10.0
    """A kubelet renews its node Lease this often."""
    node_monitor_period: float = 5.0
    node_grace_period: float = 40.0
    """A node whose Lease is older than this is marked NotReady (Unknown)."""
    pod_eviction_timeout: float = 300.0
    """Pods on a NotReady node are deleted after this (the default toleration)."""
    crash_backoff: float = 10.0
    """Interval between restarts of a crash-looping container."""
    image_pull_fails: Callable[[str], bool] | None = None
    """Decides which images cannot be pulled (ErrImagePull); None pulls everything."""
    record_events: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.heartbeat_interval <= 0:
            raise ValueError(
                f"heartbeat_interval={self.heartbeat_interval} must be more than 0 seconds"
            )
        if self.node_grace_period <= self.heartbeat_interval:
            # A Lease checked against a grace period no longer than its renewal interval is
            # stale just before each renewal: every node would flap NotReady.
            raise ValueError(
                f"node_grace_period={self.node_grace_period} must be longer than "
                f"heartbeat_interval={self.heartbeat_interval}; use a few heartbeats "
                "(Kubernetes: 40s against 10s)"
            )

    def delay(self, base: float, rng: random.Random, factor: float = 1.0) -> float:
        """``base`` stretched by a node's slowness ``factor`` plus seeded jitter."""
        if base <= 0:
            return 0.0
        return base * factor * (1.0 + rng.random() * self.delays.jitter)

    def rng(self, salt: str) -> random.Random:
        return random.Random(f"{self.seed}:{salt}") if self.seed is not None else random.Random()

    @classmethod
    def fast(cls, **overrides: object) -> ControlPlaneConfig:
        values: dict[str, object] = {
            "heartbeat_interval": 0.25,
            "node_monitor_period": 0.1,
            "node_grace_period": 1.0,
            "pod_eviction_timeout": 1.0,
            "crash_backoff": 0.2,
            "seed": 0,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def realistic(cls, **overrides: object) -> ControlPlaneConfig:
        values: dict[str, object] = {
            "delays": StageDelays(
                creating=2.5, ready=2.0, terminating=2.0, jitter=0.5, running=5.0
            ),
            "heartbeat_interval": 10.0,
            "node_monitor_period": 5.0,
            "node_grace_period": 40.0,
            "pod_eviction_timeout": 60.0,
            "crash_backoff": 10.0,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def tag_allowlist(known: dict[str, set[str]]) -> Callable[[str], bool]:
    """An image policy: images of a listed repository fail unless their tag is known.

    ``{"zookeeper": {"3.8", "3.9"}}`` makes ``zookeeper:3.10`` fail with ErrImagePull while
    images of unlisted repositories pull fine.
    """

    def fails(image: str) -> bool:
        name, _, tag = image.rpartition(":")
        if not name or "/" in tag:
            name, tag = image, "latest"
        repo = name.rsplit("/", 1)[-1]
        return repo in known and tag not in known[repo]

    return fails

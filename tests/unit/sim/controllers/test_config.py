"""Stage delays, seeded jitter, the image policy and node specifications."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milkyway.sim.controllers.config import ControlPlaneConfig, StageDelays, tag_allowlist
from milkyway.sim.nodes import default_nodes, node_object


def test_seeded_jitter_is_reproducible_and_bounded() -> None:
    config = ControlPlaneConfig(delays=StageDelays(ready=2.0, jitter=0.5), seed=7)
    rng_a, rng_b = config.rng("kubelet:a"), config.rng("kubelet:a")
    a = [config.delay(2.0, rng_a, 3.0) for _ in range(20)]
    b = [config.delay(2.0, rng_b, 3.0) for _ in range(20)]
    assert a == b
    assert all(6.0 <= d <= 9.0 for d in a)
    assert config.delay(0.0, rng_a) == 0.0


def test_negative_delay_is_refused_with_the_field_name() -> None:
    with pytest.raises(ValueError, match="ready=-1"):
        StageDelays(ready=-1)


def test_grace_period_must_outlast_the_heartbeat() -> None:
    with pytest.raises(ValueError, match=r"node_grace_period=0\.25 must be longer than"):
        ControlPlaneConfig.fast(node_grace_period=0.25)
    with pytest.raises(ValueError, match="heartbeat_interval=0"):
        ControlPlaneConfig(heartbeat_interval=0)


def test_presets_are_valid() -> None:
    realistic = ControlPlaneConfig.realistic()
    assert realistic.delays.creating > 0 and realistic.delays.jitter > 0
    fast = ControlPlaneConfig.fast()
    assert fast.node_grace_period >= 4 * fast.heartbeat_interval


@given(
    tag=st.sampled_from(["3.8", "3.9", "3.10", "latest"]),
    repo=st.sampled_from(["zookeeper", "kafka"]),
)
def test_tag_allowlist_fails_only_unknown_tags_of_listed_repositories(tag: str, repo: str) -> None:
    fails = tag_allowlist({"zookeeper": {"3.8", "3.9"}})
    image = f"registry.example.com/library/{repo}:{tag}"
    assert fails(image) == (repo == "zookeeper" and tag not in {"3.8", "3.9"})
    assert fails("registry.example.com:5000/zookeeper") is True


def test_default_nodes_carry_topology_and_capacity() -> None:
    (node,) = default_nodes(1, cluster="na-phx", region="us-west", zone="phx-1")
    obj = node_object(node, "10.0.0.1")
    labels = obj["metadata"]["labels"]
    assert labels["topology.kubernetes.io/region"] == "us-west"
    assert labels["topology.kubernetes.io/zone"] == "phx-1"
    assert labels["kubernetes.io/hostname"] == "na-phx-node-0"
    assert obj["status"]["allocatable"]["pods"] == "110"
    with pytest.raises(ValueError, match="negative"):
        default_nodes(-1)

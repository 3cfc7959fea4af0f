"""Image rules, pod names and the kubelet's atomic volume layout, without processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from milkyway.sim.process.images import (
    ImageMap,
    load_rules_file,
    parse_run,
    strip_registry,
)
from milkyway.sim.process.network import PodName, PodNetwork
from milkyway.sim.process.runtime import expand
from milkyway.sim.process.volumes import DATA_LINK, write_atomic


def test_builtin_rules_map_zookeeper_etcd_and_milkyway_images() -> None:
    images = ImageMap()
    zk = images.rule_for("docker.io/library/zookeeper:3.8.4")
    assert zk is not None and zk.args == ("zkServer.sh", "start-foreground")
    etcd = images.rule_for("quay.io/coreos/etcd:v3.5.21")
    assert etcd is not None and "/usr/local/bin/etcd" in etcd.files
    agent = images.rule_for("milkyway/agent:0.1.0")
    assert agent is not None and agent.entrypoint == ("milkyway", "agent")
    assert images.rule_for("docker.io/bitnami/kafka:3.9.1") is None
    assert not images.runs(["zookeeper:3.8.4", "kafka:3.9.1"])
    assert images.runs(["zookeeper:3.8.4", "milkyway/agent:1"])


def test_user_rules_come_first_and_without_builtins_nothing_else_runs() -> None:
    images = ImageMap([parse_run("zookeeper:*=my-zk --flag")])
    rule = images.rule_for("zookeeper:3.9.3")
    assert rule is not None and rule.entrypoint == ("my-zk", "--flag")
    assert ImageMap(builtins=False).rule_for("zookeeper:3.9.3") is None


def test_strip_registry() -> None:
    assert strip_registry("docker.io/library/zookeeper:3.8") == "library/zookeeper:3.8"
    assert strip_registry("localhost:5000/x:1") == "x:1"
    assert strip_registry("milkyway/agent:1") == "milkyway/agent:1"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("redis", "write IMAGE_PATTERN=COMMAND"),
        ("=redis-server", "write IMAGE_PATTERN=COMMAND"),
        ("redis:*=redis 'unclosed", "the command does not parse"),
    ],
)
def test_bad_run_specs_say_how_to_write_them(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_run(spec)


def test_rules_file_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "images.yaml"
    good.write_text(
        "images:\n"
        "  - image: 'redis:*'\n"
        "    command: redis-server --port 1\n"
        "    env: {A: b}\n"
        "    links: {/usr/local/bin/x: /usr/bin/true}\n"
    )
    (rule,) = load_rules_file(good)
    assert rule.entrypoint == ("redis-server", "--port", "1")
    assert rule.env == {"A": "b"} and rule.links == {"/usr/local/bin/x": "/usr/bin/true"}
    cases = {
        "images: {}\n": "expected a mapping with an 'images' list",
        "images:\n  - command: x\n": r"images\[0\]\.image: give the image pattern",
        "images:\n  - {image: a, colour: red}\n": r"unknown field\(s\) \['colour'\]",
        "images:\n  - {image: a, env: {A: 1}}\n": r"images\[0\]\.env: must map strings",
        "images: [\n": "not YAML",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            load_rules_file(bad)
    with pytest.raises(ValueError, match="No such file"):
        load_rules_file(tmp_path / "absent.yaml")


def test_hosts_files_name_local_and_cluster_set_members(tmp_path: Path) -> None:
    network = PodNetwork(seed=1)
    network.api_hosts["east"] = "127.0.0.1"
    east = PodName("east", "ns", "zk-0", network.allocate(("east", "ns", "zk-0")), "zk-0", "zk")
    west = PodName("west", "ns", "zk-1", network.allocate(("west", "ns", "zk-1")), "zk-1", "zk")
    network.register(east, tmp_path / "east")
    network.register(west, tmp_path / "west")
    text = (tmp_path / "east").read_text()
    assert f"{east.ip}\tzk-0.zk.ns.svc.cluster.local" in text
    assert "zk-1.west.zk.ns.svc.clusterset.local" in text
    assert "zk-1.zk.ns.svc.cluster.local" not in text, "a pod of another cluster is local"
    assert "kubernetes.default.svc" in text
    inode = (tmp_path / "east").stat().st_ino
    network.unregister("west", "ns", "zk-1")
    assert "zk-1" not in (tmp_path / "east").read_text()
    assert (tmp_path / "east").stat().st_ino == inode, "the bind-mounted file was replaced"
    network.release(west.ip)
    assert network.allocate(("west", "ns", "zk-1")) == west.ip


def test_atomic_writer_swaps_data_and_keeps_links(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomic(target, {"a.conf": (b"1", 0o644), "dir/b": (b"2", 0o600)}, None)
    first = os.readlink(target / DATA_LINK)
    assert (target / "a.conf").read_text() == "1"
    assert os.readlink(target / "a.conf") == f"{DATA_LINK}/a.conf"
    assert not write_atomic(target, {"a.conf": (b"1", 0o644), "dir/b": (b"2", 0o600)}, None)
    assert write_atomic(target, {"a.conf": (b"3", 0o644)}, None)
    assert os.readlink(target / DATA_LINK) != first
    assert not (target / first).exists(), "the old timestamped directory was kept"
    assert not (target / "dir").exists(), "a removed key still has its link"
    assert (target / "a.conf").read_text() == "3"


def test_variable_expansion() -> None:
    env = {"A": "x"}
    assert expand("$(A)-$(B)-$$(A)", env) == "x-$(B)-$(A)"


def test_a_rule_whose_programs_are_missing_names_what_to_install(tmp_path: Path) -> None:
    from milkyway.sim.process.images import ImageRule
    from milkyway.sim.process.runtime import ClusterFacts, ProcessRuntime

    runtime = ProcessRuntime(ClusterFacts("east"), ImageMap(), PodNetwork(), tmp_path)
    rule = ImageRule(
        "x:*",
        args=("x",),
        requires=(str(tmp_path / "absent"),),
        description="the x package (apt-get install x)",
    )
    problem = runtime._resolve(["x"], {"PATH": "/usr/bin"}, rule)
    assert "missing" in problem and "apt-get install x" in problem
    ok = ImageRule("sh:*")
    assert runtime._resolve(["sh", "-c", "true"], {"PATH": "/usr/bin:/bin"}, ok) == ""
    assert "executable file not found in $PATH" in runtime._resolve(
        ["no-such-program-here"], {"PATH": "/usr/bin"}, ok
    )

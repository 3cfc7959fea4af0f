"""deploy/: every overlay builds with kubectl's kustomize and passes strict schema
validation, and what the manifests name exists (image, command-line flags, accounts)."""

from __future__ import annotations

import itertools
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from milkyway.cli.main import app
from milkyway.operator.shard_count import DEFAULT_DEPLOYMENT
from milkyway.render.security import AGENT_IMAGE

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
TARGETS = ["base", "overlays/simulator", "overlays/production"]
KUBERNETES_VERSION = "1.32"


def kustomize(target: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed (scripts/bootstrap.sh installs it)"
    done = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / target)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def strict_errors(doc: dict[str, Any]) -> str | None:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}"
    return None


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("target", TARGETS)
def test_every_overlay_builds_and_passes_strict_validation(target: str) -> None:
    docs = kustomize(target)
    kinds = {d["kind"] for d in docs}
    assert {
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ConfigMap",
    } <= kinds
    errors = [e for e in map(strict_errors, docs) if e]
    assert errors == []
    assert len(by_kind(docs, "CustomResourceDefinition")) == len(
        list((DEPLOY / "crds").glob("*.yaml"))
    )


def test_strict_validation_rejects_an_unknown_field() -> None:
    """The check above can fail: a misspelt field of the operator Deployment is caught."""
    operator = by_kind(kustomize("base"), "Deployment")["milkyway-operator"]
    operator["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    assert strict_errors(operator) is not None


@pytest.mark.parametrize("target", TARGETS)
def test_operator_runs_several_replicas_with_leader_election_and_its_own_account(
    target: str,
) -> None:
    docs = kustomize(target)
    operator = by_kind(docs, "Deployment")["milkyway-operator"]
    spec = operator["spec"]["template"]["spec"]
    assert operator["spec"]["replicas"] == (3 if target == "overlays/production" else 2)
    args = spec["containers"][0]["args"]
    assert args[:2] == ["operator", "run"]
    assert "--no-leader-election" not in args
    assert spec["serviceAccountName"] == "milkyway-operator"
    bindings = [
        *by_kind(docs, "ClusterRoleBinding").values(),
        *by_kind(docs, "RoleBinding").values(),
    ]
    bound = [
        b["roleRef"]["name"]
        for b in bindings
        if {"kind": "ServiceAccount", "name": "milkyway-operator", "namespace": "milkyway-system"}
        in b["subjects"]
    ]
    assert sorted(bound) == ["milkyway-operator", "milkyway-operator"]
    budget = by_kind(docs, "PodDisruptionBudget")["milkyway-operator"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= (
        operator["spec"]["template"]["metadata"]["labels"].items()
    )


@pytest.mark.parametrize("target", ["base", "overlays/simulator"])
def test_install_and_agent_sidecar_use_one_image(target: str) -> None:
    for deployment in by_kind(kustomize(target), "Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["image"] == AGENT_IMAGE


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_runs_as_the_images_non_root_user(target: str) -> None:
    """The Dockerfile's ``USER 65532:65532``, asked for by every overlay: the simulator
    keeps its own user only where this machine's Python is unreadable to others
    (``ImageRule.root_only``), not because the manifests ask for root."""
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert user, "the Dockerfile names no numeric USER"
    for name, deployment in by_kind(kustomize(target), "Deployment").items():
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsUser"] == int(user[1]), name
        assert spec["securityContext"]["runAsGroup"] == int(user[2]), name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec["containers"]:
            context = container.get("securityContext") or {}
            assert context.get("runAsNonRoot", True) is True, (name, container["name"])
            assert context.get("runAsUser", int(user[1])) == int(user[1]), name


def test_production_overlay_names_its_registry_and_tls_secrets() -> None:
    docs = kustomize("overlays/production")
    name, _, tag = AGENT_IMAGE.rpartition(":")
    server = by_kind(docs, "Deployment")["milkyway-server"]["spec"]["template"]["spec"]
    assert server["containers"][0]["image"].endswith(f"/{name}:{tag}")
    secrets = {v["secret"]["secretName"] for v in server["volumes"] if "secret" in v}
    assert secrets == {"milkyway-server-tls", "milkyway-server-session"}
    assert server["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]


def test_production_operators_shard_by_their_replica_count() -> None:
    """The production overlay runs several replicas that split the work (``--shards
    auto`` follows this Deployment's name and replica count); the Role lets them read it
    and keep their Leases."""
    operator = by_kind(kustomize("overlays/production"), "Deployment")["milkyway-operator"]
    assert operator["spec"]["replicas"] > 1
    container = operator["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MILKYWAY_OPERATOR_SHARDS"] == "auto"
    assert not any(a.startswith("--deployment") for a in container["args"])
    assert operator["metadata"]["name"] == DEFAULT_DEPLOYMENT
    role = by_kind(kustomize("overlays/production"), "Role")["milkyway-operator"]
    verbs = {
        (resource, verb, tuple(rule.get("resourceNames") or ()))
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert {("leases", v, ()) for v in ("get", "list", "create", "update", "delete")} <= verbs
    assert ("deployments", "get", (DEFAULT_DEPLOYMENT,)) in verbs


def _flags(command: list[str]) -> set[str]:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return set(re.findall(r"--[a-z][a-z-]+", result.output))


@pytest.mark.parametrize("target", TARGETS)
def test_every_flag_the_manifests_pass_exists(target: str) -> None:
    for deployment in by_kind(kustomize(target), "Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            args = container["args"]
            command = args[:2] if args[0] == "operator" else args[:1]
            known = _flags(command)
            passed = {a.split("=", 1)[0] for a in args if a.startswith("--")}
            assert passed <= known, f"{deployment['metadata']['name']}: {passed - known}"
            env = {e["name"] for e in container.get("env", [])}
            for reference in re.findall(r"\$\(([A-Z_]+)\)", " ".join(args)):
                assert reference in env, f"$({reference}) is not in the container's env"


def doc_milkyway_commands() -> list[list[str]]:
    """Every ``milkyway`` command line of docs/install.md's shell blocks, split like a
    shell (continuation lines joined, a trailing ``&`` dropped)."""
    text = (ROOT / "docs" / "install.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.strip().removesuffix("&"))
            if words[:1] == ["milkyway"]:
                commands.append(words[1:])
    return commands


def test_every_milkyway_command_of_the_install_guide_uses_options_that_exist() -> None:
    """The guide's ``milkyway`` lines outside the block the install test runs (starting the
    simulator, registering a real cluster) name only options the commands have."""
    commands = doc_milkyway_commands()
    assert {tuple(c[:2]) for c in commands} >= {("sim", "up"), ("cluster", "register")}
    for words in commands:
        command = list(itertools.takewhile(lambda w: not w.startswith("-"), words))
        used = {w.split("=", 1)[0] for w in words if w.startswith("--")}
        assert used <= _flags(command), f"milkyway {' '.join(words)}: {used - _flags(command)}"
    assert "--zonee" not in _flags(["cluster", "register"])

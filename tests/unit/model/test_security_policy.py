"""The ComponentType security allowlist: capabilities, mount paths over system
directories or the service-account token, and service-account tokens are refused,
naming the field, the value and the fix, unless the operator's policy allows them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from milkyway.cli.main import app
from milkyway.components.registry import component_type_from_resource
from milkyway.model.security_policy import (
    DEFAULT_POLICY,
    SecurityPolicy,
    load_security_policy,
    security_errors,
)

runner = CliRunner()


def component_type(**container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "ComponentType",
        "metadata": {"name": "redis"},
        "spec": {
            "versions": [{"version": "7.2", "image": "redis:7.2"}],
            "profiles": {"default": {}},
            "container": {"start": "exec redis-server", **container},
        },
    }


REFUSED = [
    ({"addCapabilities": ["ALL"]}, "spec.container.addCapabilities[0]", "ALL", "capability ALL"),
    (
        {"addCapabilities": ["NET_BIND_SERVICE", "SYS_ADMIN"]},
        "spec.container.addCapabilities[1]",
        "SYS_ADMIN",
        "capability SYS_ADMIN",
    ),
    ({"writablePaths": ["/"]}, "spec.container.writablePaths[0]", "/", "whole filesystem"),
    ({"writablePaths": ["/etc"]}, "spec.container.writablePaths[0]", "/etc", "/etc"),
    (
        {"writablePaths": ["/tmp/../etc"]},
        "spec.container.writablePaths[0]",
        "/tmp/../etc",
        "without '..'",
    ),
    (
        {"dataPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
        "spec.container.dataPath",
        "/var/run/secrets/kubernetes.io/serviceaccount",
        "service-account token",
    ),
    ({"dataPath": "/var/run"}, "spec.container.dataPath", "/var/run", "service-account token"),
    ({"serviceAccountToken": True}, "spec.container.serviceAccountToken", True, "Kubernetes API"),
]


@pytest.mark.parametrize(("container", "path", "value", "message"), REFUSED)
def test_unsafe_settings_are_refused_by_default(
    container: dict[str, Any], path: str, value: Any, message: str
) -> None:
    errors = security_errors(component_type_from_resource(component_type(**container)))
    assert [(e.path, e.value) for e in errors] == [(path, value)]
    assert message in errors[0].message
    assert "security policy" in errors[0].fix


def test_the_default_settings_and_net_bind_service_pass() -> None:
    ctype = component_type_from_resource(component_type(addCapabilities=["NET_BIND_SERVICE"]))
    assert security_errors(ctype, DEFAULT_POLICY) == []


def test_the_policy_allows_by_name() -> None:
    ctype = component_type_from_resource(
        component_type(
            addCapabilities=["IPC_LOCK"],
            writablePaths=["/etc/redis"],
            serviceAccountToken=True,
        )
    )
    assert len(security_errors(ctype)) == 3
    policy = load_security_policy(
        "allowCapabilities: [IPC_LOCK]\nallowPaths: [/etc/redis]\n"
        "allowServiceAccountToken: [redis]\n"
    )
    assert security_errors(ctype, policy) == []
    other = SecurityPolicy(allow_service_account_token=["kafka"])
    assert [e.path for e in security_errors(ctype, other)][-1] == (
        "spec.container.serviceAccountToken"
    )


def _application(tmp_path: Path) -> tuple[Path, Path]:
    types = tmp_path / "types.yaml"
    types.write_text(yaml.safe_dump(component_type(addCapabilities=["SYS_ADMIN"])))
    application = {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "Application",
        "metadata": {"name": "cache", "namespace": "milkyway"},
        "spec": {
            "components": [
                {
                    "name": "redis1",
                    "version": "7.2",
                    "regions": [{"name": "NA", "zones": [{"name": "phx", "size": 1}]}],
                }
            ]
        },
    }
    file = tmp_path / "app.yaml"
    file.write_text(yaml.safe_dump(application))
    return file, types


def test_validate_and_render_refuse_a_type_the_policy_does_not_allow(tmp_path: Path) -> None:
    file, types = _application(tmp_path)
    for command in ("validate", "render"):
        result = runner.invoke(app, [command, "-f", str(file), "-t", str(types)])
        assert result.exit_code == 1, result.output
        flat = " ".join(result.output.split())
        assert "spec.components[0].type" in flat
        assert "spec.container.addCapabilities[0]" in flat
        assert "SYS_ADMIN" in flat


def test_validate_accepts_it_under_a_policy_that_allows_it(tmp_path: Path) -> None:
    file, types = _application(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text("allowCapabilities: [SYS_ADMIN]\n")
    result = runner.invoke(
        app, ["validate", "-f", str(file), "-t", str(types), "--security-policy", str(policy)]
    )
    assert result.exit_code == 0, result.output


def test_a_bad_policy_file_names_the_field(tmp_path: Path) -> None:
    file, _ = _application(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text("allowCapability: [SYS_ADMIN]\n")
    result = runner.invoke(app, ["validate", "-f", str(file), "--security-policy", str(policy)])
    assert result.exit_code == 1
    assert "allowCapability" in result.output

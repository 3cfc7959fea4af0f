"""In-cluster configuration: a pod's token file, CA and service address become a
kubeconfig lightkube accepts; a pod without its token is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightkube import KubeConfig

from milkyway.kube.clients import KubeconfigError
from milkyway.kube.in_cluster import in_cluster_kubeconfig, management_kubeconfig


def _account(tmp_path: Path) -> Path:
    (tmp_path / "token").write_text("secret-token\n")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "namespace").write_text("milkyway-system")
    return tmp_path


def test_pod_environment_becomes_a_kubeconfig(tmp_path: Path) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}
    config = in_cluster_kubeconfig(env, _account(tmp_path))
    assert config is not None
    single = KubeConfig.from_dict(config).get()
    assert single.cluster.server == "https://10.0.0.1:6443"
    assert single.cluster.certificate_auth == str(tmp_path / "ca.crt")
    assert single.user.token_file == str(tmp_path / "token"), "read again when rotated"
    assert single.namespace == "milkyway-system"


def test_ipv6_service_address_is_bracketed(tmp_path: Path) -> None:
    config = in_cluster_kubeconfig({"KUBERNETES_SERVICE_HOST": "fd00::1"}, _account(tmp_path))
    assert (
        config is not None and config["clusters"][0]["cluster"]["server"] == "https://[fd00::1]:443"
    )


def test_outside_a_pod_there_is_none(tmp_path: Path) -> None:
    assert in_cluster_kubeconfig({}, _account(tmp_path)) is None


def test_a_pod_without_its_token_is_told_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="automountServiceAccountToken"):
        in_cluster_kubeconfig({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, tmp_path)


def test_an_explicit_kubeconfig_wins(tmp_path: Path) -> None:
    given = tmp_path / "kubeconfig"
    assert management_kubeconfig(given, "mgmt") == (given, "mgmt")

import base64

import pytest
import yaml

from milkyway.kube.clients import (
    KubeconfigError,
    client_from_kubeconfig,
    kubeconfig_from_secret_data,
)

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [
        {"name": "a", "cluster": {"server": "http://127.0.0.1:1"}},
        {"name": "b", "cluster": {"server": "http://127.0.0.1:2"}},
    ],
    "users": [{"name": "admin", "user": {"token": "t0k3n"}}],
    "contexts": [
        {"name": "a", "context": {"cluster": "a", "user": "admin"}},
        {"name": "b", "context": {"cluster": "b", "user": "admin", "namespace": "ns"}},
    ],
    "current-context": "a",
}


def test_client_per_context_points_at_that_cluster() -> None:
    client = client_from_kubeconfig(KUBECONFIG, "b")
    assert str(client._client._client.base_url).startswith("http://127.0.0.1:2")


def test_unknown_context_names_the_known_ones() -> None:
    with pytest.raises(
        KubeconfigError, match="context 'c' is not in the kubeconfig; known contexts: a, b"
    ):
        client_from_kubeconfig(KUBECONFIG, "c")


def test_missing_file_says_what_to_pass(tmp_path) -> None:
    with pytest.raises(KubeconfigError, match="does not exist; pass --kubeconfig"):
        client_from_kubeconfig(tmp_path / "nope")


def test_secret_data_round_trip_and_errors() -> None:
    encoded = base64.b64encode(yaml.safe_dump(KUBECONFIG).encode()).decode()
    assert kubeconfig_from_secret_data({"kubeconfig": encoded}) == KUBECONFIG
    with pytest.raises(KubeconfigError, match=r"no key 'kubeconfig' \(keys: other\)"):
        kubeconfig_from_secret_data({"other": encoded})
    with pytest.raises(KubeconfigError, match="not a base64-encoded kubeconfig"):
        kubeconfig_from_secret_data({"kubeconfig": "%%%"})
    not_config = base64.b64encode(b"just: text").decode()
    with pytest.raises(KubeconfigError, match="does not hold a kubeconfig"):
        kubeconfig_from_secret_data({"kubeconfig": not_config})

"""ServiceAccount and DefaultTolerationSeconds admission, namespace defaults and service
account tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from milkyway.sim.apiserver.admission import MOUNT_PATH
from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.apiserver.errors import ApiError


def pod(name: str = "p", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "a", "image": "nginx:1"}, {"name": "b", "image": "nginx:1"}],
            "initContainers": [{"name": "init", "image": "busybox:1"}],
            **spec,
        },
    }


@pytest.fixture
def api() -> ClusterAPI:
    return ClusterAPI()


def test_new_namespaces_get_a_default_service_account(api: ClusterAPI) -> None:
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    account = api.get("serviceaccounts", "default", namespace="team")
    assert account["metadata"]["uid"]
    assert api.get("serviceaccounts", "default", namespace="kube-system")


def test_pods_get_the_token_volume_and_default_tolerations(api: ClusterAPI) -> None:
    created = api.create(pod())
    spec = created["spec"]
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    (volume,) = [v for v in spec["volumes"] if v["name"].startswith("kube-api-access-")]
    sources = volume["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    for container in spec["containers"] + spec["initContainers"]:
        assert {"name": volume["name"], "readOnly": True, "mountPath": MOUNT_PATH} in container[
            "volumeMounts"
        ]
    assert {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    } in spec["tolerations"]
    assert any(t["key"] == "node.kubernetes.io/unreachable" for t in spec["tolerations"])


def test_own_tolerations_are_kept_and_not_doubled(api: ClusterAPI) -> None:
    mine = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    spec = api.create(pod(tolerations=[mine]))["spec"]
    unreachable = [t for t in spec["tolerations"] if t["key"] == "node.kubernetes.io/unreachable"]
    assert unreachable == [mine]


def test_automount_can_be_turned_off_by_pod_or_service_account(api: ClusterAPI) -> None:
    off = api.create(pod("off", automountServiceAccountToken=False))
    assert "volumes" not in off["spec"]
    api.create(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "quiet"},
            "automountServiceAccountToken": False,
        }
    )
    quiet = api.create(pod("quiet", serviceAccountName="quiet"))
    assert "volumes" not in quiet["spec"]
    forced = api.create(
        pod("forced", serviceAccountName="quiet", automountServiceAccountToken=True)
    )
    assert forced["spec"]["volumes"][0]["name"].startswith("kube-api-access-")


def test_pod_of_a_missing_service_account_is_refused(api: ClusterAPI) -> None:
    with pytest.raises(ApiError) as refused:
        api.create(pod("lost", serviceAccountName="ghost"))
    assert refused.value.code == 403
    assert refused.value.message == (
        'pods "lost" is forbidden: error looking up service account default/ghost: '
        'serviceaccount "ghost" not found'
    )
    assert api.list("pods", namespace="default")["items"] == []


def test_tokens_authenticate_while_their_service_account_lives() -> None:
    moment = [datetime(2026, 1, 1, tzinfo=UTC)]
    api = ClusterAPI(clock=lambda: moment[0])
    token, expires = api.issue_token("default", "default")
    assert expires == moment[0] + timedelta(seconds=3607)
    user = api.authenticate_token(f"Bearer {token}")
    assert user is not None
    assert user.name == "system:serviceaccount:default:default"
    assert "system:serviceaccounts:default" in user.groups
    header, body, signature = token.split(".")
    assert api.authenticate_token(f"Bearer {header}.{body}.{signature[:-2]}xx") is None
    assert ClusterAPI().authenticate_token(f"Bearer {token}") is None
    moment[0] += timedelta(seconds=3608)
    assert api.authenticate_token(f"Bearer {token}") is None
    moment[0] -= timedelta(seconds=3608)
    api.delete("serviceaccounts", "default", namespace="default")
    api.create(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
        namespace="default",
    )
    assert api.authenticate_token(f"Bearer {token}") is None


def test_pod_bound_tokens_stop_with_their_pod(api: ClusterAPI) -> None:
    api.create(pod("holder"))
    token, _ = api.issue_token("default", "default", pod="holder")
    assert api.authenticate_token(f"Bearer {token}") is not None
    api.delete("pods", "holder", namespace="default")
    assert api.authenticate_token(f"Bearer {token}") is None

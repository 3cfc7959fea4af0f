"""Server-side Table printing: the columns and cells kubectl shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.apiserver.printers_builtin import BUILTIN_PRINTERS
from milkyway.sim.apiserver.printing import human_duration, to_table

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def stamp(ago: timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, ago: timedelta = timedelta(minutes=5), **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": stamp(ago), **extra}


def table(objects: list[dict], group: str, kind: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("printer_columns", None)
    return to_table(objects, group=group, kind=kind, now=NOW, **kwargs)


def headers(result: dict[str, Any], *, wide: bool = False) -> list[str]:
    return [c["name"] for c in result["columnDefinitions"] if wide or c["priority"] == 0]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "<invalid>"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 1200, "3h20m"),
        (30 * 3600, "30h"),
        (52 * 3600, "2d4h"),
        (3 * 86400, "3d"),
        (40 * 86400, "40d"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_read_like_kubectl(seconds: int, expected: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == expected


RUNNING_POD: dict[str, Any] = {
    "metadata": meta("web-0"),
    "spec": {"nodeName": "node-1", "containers": [{"name": "a"}, {"name": "b"}]},
    "status": {
        "phase": "Running",
        "podIP": "10.0.0.7",
        "containerStatuses": [
            {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}},
            {
                "name": "b",
                "ready": False,
                "restartCount": 2,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"finishedAt": stamp(timedelta(seconds=40))}},
            },
        ],
    },
}


def test_pod_columns_and_cells() -> None:
    result = table([RUNNING_POD], "", "Pod")
    assert result["kind"] == "Table"
    assert result["apiVersion"] == "meta.k8s.io/v1"
    assert headers(result) == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert headers(result, wide=True)[5:7] == ["IP", "Node"]
    cells = result["rows"][0]["cells"]
    assert cells[:7] == [
        "web-0",
        "1/2",
        "CrashLoopBackOff",
        "2 (40s ago)",
        "5m",
        "10.0.0.7",
        "node-1",
    ]


@pytest.mark.parametrize(
    ("status", "deleting", "expected"),
    [
        ({"phase": "Pending"}, False, "Pending"),
        (
            {"phase": "Running", "containerStatuses": [{"ready": True, "state": {"running": {}}}]},
            False,
            "Running",
        ),
        (
            {
                "phase": "Succeeded",
                "containerStatuses": [
                    {"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}
                ],
            },
            False,
            "Completed",
        ),
        (
            {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]},
            False,
            "ExitCode:3",
        ),
        (
            {"phase": "Pending", "initContainerStatuses": [{"state": {"running": {}}}]},
            False,
            "Init:0/1",
        ),
        ({"phase": "Running"}, True, "Terminating"),
        ({"phase": "Failed", "reason": "Evicted"}, False, "Evicted"),
    ],
)
def test_pod_status_column(status: dict[str, Any], deleting: bool, expected: str) -> None:
    pod = {
        "metadata": meta("p"),
        "spec": {"containers": [{"name": "a"}], "initContainers": []},
        "status": status,
    }
    if "initContainerStatuses" in status:
        pod["spec"]["initContainers"] = [{"name": "init"}]
    if deleting:
        pod["metadata"]["deletionTimestamp"] = stamp(timedelta(seconds=1))
    assert table([pod], "", "Pod")["rows"][0]["cells"][2] == expected


def test_include_object_variants() -> None:
    metadata_rows = table([RUNNING_POD], "", "Pod")["rows"]
    assert metadata_rows[0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": RUNNING_POD["metadata"],
    }
    assert (
        table([RUNNING_POD], "", "Pod", include_object="Object")["rows"][0]["object"] is RUNNING_POD
    )
    assert "object" not in table([RUNNING_POD], "", "Pod", include_object="None")["rows"][0]
    with pytest.raises(ApiError) as info:
        table([RUNNING_POD], "", "Pod", include_object="All")
    assert info.value.code == 400
    listed = table([], "", "Pod", list_metadata={"resourceVersion": "42", "continue": "abc"})
    assert listed["metadata"] == {"resourceVersion": "42", "continue": "abc"}
    assert listed["rows"] == []


def test_node_service_and_endpoints_cells() -> None:
    node = {
        "metadata": {
            **meta("n1", timedelta(days=3)),
            "labels": {"node-role.kubernetes.io/control-plane": ""},
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0"},
            "addresses": [{"type": "InternalIP", "address": "10.1.0.1"}],
        },
    }
    cells = table([node], "", "Node")["rows"][0]["cells"]
    assert cells[:6] == [
        "n1",
        "Ready,SchedulingDisabled",
        "control-plane",
        "3d",
        "v1.32.0",
        "10.1.0.1",
    ]
    service = {
        "metadata": meta("web"),
        "spec": {
            "type": "LoadBalancer",
            "clusterIP": "10.96.0.10",
            "selector": {"app": "web"},
            "ports": [
                {"port": 80, "nodePort": 30080, "protocol": "TCP"},
                {"port": 53, "protocol": "UDP"},
            ],
        },
    }
    result = table([service], "", "Service")
    assert headers(result) == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"]
    assert result["rows"][0]["cells"] == [
        "web",
        "LoadBalancer",
        "10.96.0.10",
        "<pending>",
        "80:30080/TCP,53/UDP",
        "5m",
        "app=web",
    ]
    endpoints = {
        "metadata": meta("web"),
        "subsets": [
            {"addresses": [{"ip": f"10.0.0.{i}"} for i in range(5)], "ports": [{"port": 80}]}
        ],
    }
    cells = table([endpoints], "", "Endpoints")["rows"][0]["cells"]
    assert cells[1] == "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 2 more..."
    assert table([{"metadata": meta("e")}], "", "Endpoints")["rows"][0]["cells"][1] == "<none>"
    endpoint_slice = {
        "metadata": meta("web-abc"),
        "addressType": "IPv4",
        "ports": [{"port": 80}, {"name": "any"}],
        "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(4)],
    }
    sliced = table([endpoint_slice], "discovery.k8s.io", "EndpointSlice")
    assert headers(sliced) == ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    assert sliced["rows"][0]["cells"][1:4] == [
        "IPv4",
        "80,<unset>",
        "10.0.0.0,10.0.0.1,10.0.0.2 + 1 more...",
    ]


WORKLOAD_SPEC: dict[str, Any] = {
    "replicas": 3,
    "selector": {
        "matchLabels": {"app": "zk"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
    },
    "template": {
        "spec": {
            "containers": [
                {"name": "zk", "image": "zookeeper:3.9"},
                {"name": "log", "image": "busybox"},
            ]
        }
    },
}


@pytest.mark.parametrize(
    ("kind", "status", "expected_headers", "expected_cells"),
    [
        (
            "Deployment",
            {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
            ["Name", "Ready", "Up-to-date", "Available", "Age"],
            ["zk", "2/3", 3, 2, "5m", "zk,log", "zookeeper:3.9,busybox", "app=zk,tier in (a,b)"],
        ),
        (
            "ReplicaSet",
            {"replicas": 3, "readyReplicas": 1},
            ["Name", "Desired", "Current", "Ready", "Age"],
            ["zk", 3, 3, 1, "5m", "zk,log", "zookeeper:3.9,busybox", "app=zk,tier in (a,b)"],
        ),
        (
            "StatefulSet",
            {},
            ["Name", "Ready", "Age"],
            ["zk", "0/3", "5m", "zk,log", "zookeeper:3.9,busybox"],
        ),
    ],
)
def test_workload_columns(
    kind: str, status: dict, expected_headers: list[str], expected_cells: list[Any]
) -> None:
    result = table(
        [{"metadata": meta("zk"), "spec": WORKLOAD_SPEC, "status": status}], "apps", kind
    )
    assert headers(result) == expected_headers
    assert result["rows"][0]["cells"] == expected_cells


def test_storage_columns() -> None:
    claim = {
        "metadata": meta("data-zk-0"),
        "spec": {"volumeName": "pv-1", "storageClassName": "local"},
        "status": {
            "phase": "Bound",
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce", "ReadWriteOncePod"],
        },
    }
    result = table([claim], "", "PersistentVolumeClaim")
    assert headers(result) == [
        "Name",
        "Status",
        "Volume",
        "Capacity",
        "Access Modes",
        "StorageClass",
        "VolumeAttributesClass",
        "Age",
    ]
    assert result["rows"][0]["cells"][:8] == [
        "data-zk-0",
        "Bound",
        "pv-1",
        "1Gi",
        "RWO,RWOP",
        "local",
        "<none>",
        "5m",
    ]
    volume = {
        "metadata": meta("pv-1"),
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"namespace": "default", "name": "data-zk-0"},
            "storageClassName": "local",
        },
        "status": {"phase": "Bound"},
    }
    cells = table([volume], "", "PersistentVolume")["rows"][0]["cells"]
    assert cells[:10] == [
        "pv-1",
        "1Gi",
        "RWO",
        "Delete",
        "Bound",
        "default/data-zk-0",
        "local",
        "<none>",
        "",
        "5m",
    ]
    storage_class = {
        "metadata": {
            **meta("local"),
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    cells = table([storage_class], "storage.k8s.io", "StorageClass")["rows"][0]["cells"]
    assert cells == [
        "local (default)",
        "kubernetes.io/no-provisioner",
        "Delete",
        "WaitForFirstConsumer",
        False,
        "5m",
    ]


def test_pdb_lease_event_configmap_secret_columns() -> None:
    pdb = {"metadata": meta("zk"), "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}}
    assert table([pdb], "policy", "PodDisruptionBudget")["rows"][0]["cells"] == [
        "zk",
        "2",
        "N/A",
        1,
        "5m",
    ]
    lease = {"metadata": meta("leader"), "spec": {"holderIdentity": "op-1"}}
    assert table([lease], "coordination.k8s.io", "Lease")["rows"][0]["cells"] == [
        "leader",
        "op-1",
        "5m",
    ]
    event = {
        "metadata": meta("web-0.1"),
        "involvedObject": {"kind": "Pod", "name": "web-0"},
        "type": "Warning",
        "reason": "BackOff",
        "message": "Back-off restarting failed container",
        "lastTimestamp": stamp(timedelta(seconds=30)),
        "count": 4,
    }
    result = table([event], "", "Event")
    assert headers(result) == ["Last Seen", "Type", "Reason", "Object", "Message"]
    assert [result["rows"][0]["cells"][i] for i in (0, 1, 2, 3, 6, 8)] == [
        "30s",
        "Warning",
        "BackOff",
        "pod/web-0",
        "Back-off restarting failed container",
        4,
    ]
    configmap = {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert table([configmap], "", "ConfigMap")["rows"][0]["cells"] == ["cfg", 3, "5m"]
    secret = {
        "metadata": meta("s"),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "", "tls.key": ""},
    }
    assert table([secret], "", "Secret")["rows"][0]["cells"] == ["s", "kubernetes.io/tls", 2, "5m"]


def test_namespace_crd_and_default_columns() -> None:
    namespace = {
        "metadata": meta("team-a", timedelta(hours=30)),
        "status": {"phase": "Terminating"},
    }
    assert table([namespace], "", "Namespace")["rows"][0]["cells"] == [
        "team-a",
        "Terminating",
        "30h",
    ]
    crd = {"metadata": meta("widgets.example.com")}
    result = table([crd], "apiextensions.k8s.io", "CustomResourceDefinition")
    assert headers(result) == ["Name", "Created At"]
    assert result["rows"][0]["cells"] == ["widgets.example.com", stamp(timedelta(minutes=5))]
    account = table([{"metadata": meta("default")}], "", "ServiceAccount")
    assert headers(account) == ["Name", "Secrets", "Age"]
    other = table(
        [{"metadata": meta("x", timedelta(seconds=7))}], "scheduling.k8s.io", "PriorityClass"
    )
    assert headers(other) == ["Name", "Age"]
    assert other["rows"][0]["cells"] == ["x", "7s"]


COLUMNS = [
    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Where it is."},
    {"name": "Zones", "type": "string", "jsonPath": ".spec.members[*].zone"},
    {"name": "Ready", "type": "boolean", "jsonPath": ".status.ready"},
    {
        "name": "Ratio",
        "type": "number",
        "format": "float",
        "jsonPath": ".spec.ratio",
        "priority": 1,
    },
    {"name": "Since", "type": "date", "jsonPath": ".status.since"},
    {"name": "Owner", "type": "string", "jsonPath": ".metadata.labels['example.com/owner']"},
]


def test_crd_printer_columns_follow_their_json_paths() -> None:
    widget = {
        "metadata": {**meta("w1"), "labels": {"example.com/owner": "team-a"}},
        "spec": {"size": 3, "ratio": 0.5, "members": [{"zone": "a"}, {"zone": "b"}]},
        "status": {"phase": "Ready", "ready": True, "since": stamp(timedelta(hours=2))},
    }
    result = table(
        [widget, {"metadata": meta("w2")}], "example.com", "Widget", printer_columns=COLUMNS
    )
    assert headers(result) == ["Name", "Size", "Phase", "Zones", "Ready", "Since", "Owner"]
    definitions = {c["name"]: c for c in result["columnDefinitions"]}
    assert definitions["Ratio"] == {
        "name": "Ratio",
        "type": "number",
        "format": "float",
        "description": "",
        "priority": 1,
    }
    assert definitions["Phase"]["description"] == "Where it is."
    assert result["rows"][0]["cells"] == ["w1", 3, "Ready", "a,b", True, 0.5, "120m", "team-a"]
    assert result["rows"][1]["cells"] == ["w2", None, None, None, None, None, None, None]


def test_crd_without_printer_columns_shows_name_and_age() -> None:
    result = table([{"metadata": meta("w1")}], "example.com", "Widget", printer_columns=[])
    assert headers(result) == ["Name", "Age"]
    assert result["rows"][0]["cells"] == ["w1", "5m"]


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "metadata",
                    "spec",
                    "status",
                    "containers",
                    "containerStatuses",
                    "state",
                    "ports",
                    "subsets",
                    "addresses",
                    "selector",
                    "labels",
                    "name",
                    "creationTimestamp",
                    "type",
                    "conditions",
                    "replicas",
                    "template",
                    "involvedObject",
                    "data",
                    "roleRef",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(
    obj=st.dictionaries(st.sampled_from(["metadata", "spec", "status", "data"]), junk),
    data=st.data(),
)
def test_printing_never_raises_on_odd_objects(obj: dict[str, Any], data: Any) -> None:
    group, kind = data.draw(st.sampled_from(sorted(BUILTIN_PRINTERS)))
    result = to_table([obj], group=group, kind=kind, printer_columns=None, now=NOW)
    assert len(result["rows"][0]["cells"]) == len(result["columnDefinitions"])
    crd = to_table([obj], group="x.io", kind="X", printer_columns=COLUMNS, now=NOW)
    assert len(crd["rows"][0]["cells"]) == len(COLUMNS) + 1


def test_daemonset_and_controller_revision_columns() -> None:
    daemonset = {
        "metadata": meta("agent"),
        "spec": {
            "template": {
                "spec": {
                    "nodeSelector": {"disk": "ssd"},
                    "containers": [{"name": "a", "image": "agent:1"}],
                }
            }
        },
        "status": {
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "numberReady": 2,
            "updatedNumberScheduled": 3,
            "numberAvailable": 2,
        },
    }
    result = table([daemonset], "apps", "DaemonSet")
    assert headers(result) == [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Up-to-date",
        "Available",
        "Node Selector",
        "Age",
    ]
    assert result["rows"][0]["cells"][:8] == ["agent", 3, 3, 2, 3, 2, "disk=ssd", "5m"]
    revision = {
        "metadata": {
            **meta("zk-6b8f"),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": "zk",
                    "uid": "u",
                    "controller": True,
                }
            ],
        },
        "revision": 2,
    }
    result = table([revision, {"metadata": meta("orphan")}], "apps", "ControllerRevision")
    assert headers(result) == ["Name", "Controller", "Revision", "Age"]
    assert [row["cells"] for row in result["rows"]] == [
        ["zk-6b8f", "statefulset.apps/zk", 2, "5m"],
        ["orphan", "<none>", 0, "5m"],
    ]

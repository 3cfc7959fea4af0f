"""The Application verbs of the ``milkyway`` CLI against a simulated management cluster
(no operator: the tests check what the CLI writes and how it shows what it reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from lightkube import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event

from milkyway.kube.resources import APPLICATION, FLOWRUN

from .conftest import Mgmt

EXAMPLES = Path(__file__).parents[3] / "examples"
STREAM1 = EXAMPLES / "stream1.yaml"


async def _app(mgmt: Mgmt, name: str = "stream1", namespace: str = "milkyway") -> dict[str, Any]:
    return dict((await mgmt.client.get(APPLICATION, name, namespace=namespace)).to_dict())


def _component(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in obj["spec"]["components"] if c["name"] == name)


async def _apply_stream1(mgmt: Mgmt) -> None:
    result = await mgmt.cli("apply", "-f", str(STREAM1))
    assert result.exit_code == 0, result.output


async def test_apply_creates_then_reports_unchanged(mgmt: Mgmt) -> None:
    first = await mgmt.cli("apply", "-f", str(STREAM1))
    assert first.exit_code == 0, first.output
    assert "application/milkyway/stream1 created" in first.output
    again = await mgmt.cli("apply", "-f", str(STREAM1))
    assert "application/milkyway/stream1 unchanged" in again.output
    stored = await _app(mgmt)
    assert [c["name"] for c in stored["spec"]["components"]] == [
        "zookeeper1",
        "kafka1",
        "zookeeper2",
        "flink-jobmanager",
        "flink-taskmanager",
    ]


async def test_apply_multi_document_file_with_default_namespace(mgmt: Mgmt, tmp_path: Path) -> None:
    text = STREAM1.read_text().replace("  namespace: milkyway\n", "")
    second = text.replace("name: stream1", "name: stream2")
    path = tmp_path / "two.yaml"
    path.write_text(text + "\n---\n" + second)
    result = await mgmt.cli("apply", "-f", str(path), "-n", "team-a")
    assert result.exit_code == 0, result.output
    assert "application/team-a/stream1 created" in result.output
    assert "application/team-a/stream2 created" in result.output
    listed = await mgmt.cli("get", "-A")
    assert "team-a" in listed.output and "stream2" in listed.output


async def test_apply_rejects_every_problem_at_once_and_sends_nothing(
    mgmt: Mgmt, tmp_path: Path
) -> None:
    bad = (
        STREAM1.read_text()
        .replace("version: 3.4.7", "version: 9.9.9", 1)
        .replace("size: 1", "size: -1", 1)
        .replace("config: default", "confg: default", 1)
    )
    path = tmp_path / "bad.yaml"
    path.write_text(bad + "\n---\n" + STREAM1.read_text().replace("stream1", "ok-app"))
    result = await mgmt.cli("apply", "-f", str(path))
    assert result.exit_code == 1
    out = result.output
    assert "nothing was changed" in out
    assert "spec.components[0].confg" in out and "did you mean `config`" in out
    assert "-1" in out and "size" in out
    items = [i async for i in mgmt.client.list(APPLICATION, namespace="*")]
    assert items == []


async def test_get_and_describe_show_spec_status_flow_and_events(mgmt: Mgmt) -> None:
    await _apply_stream1(mgmt)
    status = {
        "phase": "Updating",
        "observedGeneration": 1,
        "currentFlow": "stream1-zookeeper1-upgrade-abc12",
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "Upgrading",
                "message": "1 of 3 on 3.4.14",
            }
        ],
        "components": {
            "zookeeper1": {"zones": {"phx": {"desired": 3, "ready": 2, "version": "3.4.7"}}},
            "kafka1": {"zones": {"phx": {"desired": 3, "ready": 3, "version": "1.1.0"}}},
        },
    }
    await mgmt.client.patch(
        APPLICATION.Status,
        "stream1",
        {"status": status},
        namespace="milkyway",
        patch_type=_merge(),
    )
    await mgmt.client.create(
        FLOWRUN(
            {
                "metadata": {
                    "name": "stream1-zookeeper1-upgrade-abc12",
                    "namespace": "milkyway",
                    "labels": {
                        "milkyway.ebay.com/application": "stream1",
                        "milkyway.ebay.com/component": "zookeeper1",
                    },
                },
                "spec": {"flow": "rolling-upgrade", "params": {}},
            }
        )
    )
    await mgmt.client.create(
        Event(
            metadata=ObjectMeta(name="stream1.1", namespace="milkyway"),
            involvedObject={"kind": "Application", "name": "stream1", "namespace": "milkyway"},
            reason="FlowStarted",
            message="rolling-upgrade of zookeeper1 started",
            type="Normal",
        )
    )
    listed = await mgmt.cli("get", "-n", "milkyway")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.startswith("stream1"))
    assert "Updating" in row and "5/6" in row and "stream1-zookeeper1-upgrade-abc12" in row

    described = await mgmt.cli("describe", "stream1", "-n", "milkyway")
    assert described.exit_code == 0, described.output
    lines = described.output.splitlines()
    zk = next(line for line in lines if line.startswith("zookeeper1"))
    assert "phx" in zk and "1 down" in zk
    kafka = next(line for line in lines if line.startswith("kafka1"))
    assert "healthy" in kafka
    flink = next(line for line in lines if line.startswith("flink-taskmanager"))
    assert "not observed" in flink
    assert "Upgrading" in described.output and "1 of 3 on 3.4.14" in described.output
    assert "rolling-upgrade" in described.output
    assert "FlowStarted" in described.output


async def test_get_missing_application_says_how_to_list(mgmt: Mgmt) -> None:
    result = await mgmt.cli("describe", "nope", "-n", "milkyway")
    assert result.exit_code == 1
    assert "Application milkyway/nope not found" in result.output
    assert "milkyway get -n milkyway" in result.output


async def test_scale_changes_one_zone_and_adds_a_zone_with_its_region(mgmt: Mgmt) -> None:
    await _apply_stream1(mgmt)
    result = await mgmt.cli(
        "scale", "stream1", "kafka1", "--zone", "phx", "--size", "5", "-n", "milkyway"
    )
    assert result.exit_code == 0, result.output
    assert "size 3 -> 5" in result.output
    kafka = _component(await _app(mgmt), "kafka1")
    assert kafka["regions"][0]["zones"][0]["size"] == 5

    missing = await mgmt.cli(
        "scale", "stream1", "kafka1", "--zone", "slc", "--size", "3", "-n", "milkyway"
    )
    assert missing.exit_code == 1
    assert "no zone 'slc'" in missing.output and "--region" in missing.output

    added = await mgmt.cli(
        "scale",
        "stream1",
        "kafka1",
        "--zone",
        "slc",
        "--size",
        "3",
        "--region",
        "NA",
        "-n",
        "milkyway",
    )
    assert added.exit_code == 0, added.output
    kafka = _component(await _app(mgmt), "kafka1")
    assert [z["name"] for z in kafka["regions"][0]["zones"]] == ["phx", "slc"]


async def test_scale_to_an_invalid_size_is_rejected_and_changes_nothing(mgmt: Mgmt) -> None:
    await _apply_stream1(mgmt)
    before = await _app(mgmt)
    result = await mgmt.cli(
        "scale", "stream1", "zookeeper1", "--zone", "phx", "--size", "4", "-n", "milkyway"
    )
    assert result.exit_code == 1
    assert "nothing was changed" in result.output
    assert "spec.components[0].regions" in result.output and "odd size" in result.output
    after = await _app(mgmt)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_upgrade_sets_the_version_and_rejects_unknown_ones(mgmt: Mgmt) -> None:
    await _apply_stream1(mgmt)
    ok = await mgmt.cli("upgrade", "stream1", "zookeeper1", "--version", "3.4.14", "-n", "milkyway")
    assert ok.exit_code == 0, ok.output
    assert "3.4.7 -> 3.4.14" in ok.output
    assert _component(await _app(mgmt), "zookeeper1")["version"] == "3.4.14"
    bad = await mgmt.cli("upgrade", "stream1", "zookeeper1", "--version", "9.9.9", "-n", "milkyway")
    assert bad.exit_code == 1
    assert "9.9.9" in bad.output and "nothing was changed" in bad.output
    assert _component(await _app(mgmt), "zookeeper1")["version"] == "3.4.14"


async def test_set_param_sets_and_removes_typed_values(mgmt: Mgmt) -> None:
    await _apply_stream1(mgmt)
    ok = await mgmt.cli(
        "set-param",
        "stream1",
        "zookeeper1",
        "tickTime=3000",
        "maxClientCnxns=100",
        "-n",
        "milkyway",
    )
    assert ok.exit_code == 0, ok.output
    assert _component(await _app(mgmt), "zookeeper1")["params"] == {
        "tickTime": 3000,
        "maxClientCnxns": 100,
    }
    removed = await mgmt.cli("set-param", "stream1", "zookeeper1", "tickTime-", "-n", "milkyway")
    assert removed.exit_code == 0, removed.output
    assert _component(await _app(mgmt), "zookeeper1")["params"] == {"maxClientCnxns": 100}
    bad = await mgmt.cli("set-param", "stream1", "zookeeper1", "tickTime=fast", "-n", "milkyway")
    assert bad.exit_code == 1
    assert "tickTime" in bad.output and "'fast'" in bad.output
    assert _component(await _app(mgmt), "zookeeper1")["params"] == {"maxClientCnxns": 100}


async def test_unknown_component_names_the_known_ones(mgmt: Mgmt) -> None:
    await _apply_stream1(mgmt)
    result = await mgmt.cli("upgrade", "stream1", "zk", "--version", "3.4.14", "-n", "milkyway")
    assert result.exit_code == 1
    assert "no component 'zk'" in result.output and "zookeeper1" in result.output


async def test_flows_lists_only_the_applications_runs(mgmt: Mgmt) -> None:
    await _apply_stream1(mgmt)
    for app_name, flow in (("stream1", "provision"), ("other", "decommission")):
        await mgmt.client.create(
            FLOWRUN(
                {
                    "metadata": {
                        "name": f"{app_name}-{flow}",
                        "namespace": "milkyway",
                        "labels": {"milkyway.ebay.com/application": app_name},
                    },
                    "spec": {"flow": flow, "params": {}},
                }
            )
        )
    mine = await mgmt.cli("flows", "stream1", "-n", "milkyway")
    assert mine.exit_code == 0, mine.output
    assert "stream1-provision" in mine.output and "other-decommission" not in mine.output
    every = await mgmt.cli("flows", "-n", "milkyway")
    assert "stream1-provision" in every.output and "other-decommission" in every.output


async def test_delete_removes_the_application(mgmt: Mgmt) -> None:
    await _apply_stream1(mgmt)
    result = await mgmt.cli("delete", "stream1", "-n", "milkyway", "--wait", "--timeout", "10")
    assert result.exit_code == 0, result.output
    assert "deleted" in result.output
    try:
        await mgmt.client.get(APPLICATION, "stream1", namespace="milkyway")
    except ApiError as exc:
        assert exc.status.code == 404
    else:
        raise AssertionError("the Application still exists")


def _merge() -> Any:
    from lightkube.types import PatchType

    return PatchType.MERGE


async def test_replace_records_the_member_and_request_time(mgmt: Mgmt) -> None:
    await _apply_stream1(mgmt)
    first = await mgmt.cli("replace", "stream1", "stream1-zookeeper1-phx-1", "-n", "milkyway")
    assert first.exit_code == 0, first.output
    await mgmt.cli("replace", "stream1", "stream1-kafka1-phx-0", "-n", "milkyway")
    again = await mgmt.cli("replace", "stream1", "stream1-zookeeper1-phx-1", "-n", "milkyway")
    assert again.exit_code == 0, again.output
    value = (await _app(mgmt))["metadata"]["annotations"]["milkyway.ebay.com/replace"]
    items = value.split(",")
    assert [i.partition("@")[0] for i in items] == [
        "stream1-kafka1-phx-0",
        "stream1-zookeeper1-phx-1",
    ]
    assert all(i.partition("@")[2].endswith("Z") for i in items)


async def test_replace_refuses_a_name_that_is_not_a_member(mgmt: Mgmt) -> None:
    await _apply_stream1(mgmt)
    result = await mgmt.cli("replace", "stream1", "orders-kafka-phx-0", "-n", "milkyway")
    assert result.exit_code == 1
    assert "is not a member of milkyway/stream1" in result.output
    annotations = (await _app(mgmt))["metadata"].get("annotations") or {}
    assert "milkyway.ebay.com/replace" not in annotations


async def test_restart_records_the_component_and_request_time(mgmt: Mgmt) -> None:
    await _apply_stream1(mgmt)
    first = await mgmt.cli("restart", "stream1", "kafka1", "-n", "milkyway")
    assert first.exit_code == 0, first.output
    await mgmt.cli("restart", "stream1", "zookeeper1", "-n", "milkyway")
    value = (await _app(mgmt))["metadata"]["annotations"]["milkyway.ebay.com/restart"]
    assert [i.partition("@")[0] for i in value.split(",")] == ["kafka1", "zookeeper1"]
    unknown = await mgmt.cli("restart", "stream1", "kafka9", "-n", "milkyway")
    assert unknown.exit_code == 1 and "no component 'kafka9'" in unknown.output


async def test_apply_refuses_a_component_type_the_security_policy_does_not_allow(
    mgmt: Mgmt, tmp_path: Path
) -> None:
    ctype = {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "ComponentType",
        "metadata": {"name": "redis"},
        "spec": {
            "versions": [{"version": "7.2", "image": "redis:7.2"}],
            "profiles": {"default": {}},
            "container": {"start": "exec redis-server", "writablePaths": ["/"]},
        },
    }
    path = tmp_path / "redis.yaml"
    path.write_text(yaml.safe_dump(ctype))
    refused = await mgmt.cli("apply", "-f", str(path))
    assert refused.exit_code == 1, refused.output
    flat = " ".join(refused.output.split())
    assert "spec.container.writablePaths[0]" in flat
    assert "allowPaths: [/]" in flat
    policy = tmp_path / "policy.yaml"
    policy.write_text("allowPaths: [/]\n")
    allowed = await mgmt.cli("apply", "-f", str(path), "--security-policy", str(policy))
    assert allowed.exit_code == 0, allowed.output
    assert "componenttype/redis created" in allowed.output


async def test_apply_refuses_a_flow_override_naming_no_flow(mgmt: Mgmt, tmp_path: Path) -> None:
    text = STREAM1.read_text().replace(
        "    - name: kafka1\n", "    - name: kafka1\n      flows: {provision: no-such-flow}\n", 1
    )
    path = tmp_path / "app.yaml"
    path.write_text(text)
    result = await mgmt.cli("apply", "-f", str(path))
    assert result.exit_code == 1, result.output
    flat = " ".join(result.output.split())
    assert "spec.components[1].flows.provision" in flat
    assert "no Flow named 'no-such-flow' exists" in flat
    builtin = text.replace("no-such-flow", "milkyway-provision")
    path.write_text(builtin)
    assert (await mgmt.cli("apply", "-f", str(path))).exit_code == 0

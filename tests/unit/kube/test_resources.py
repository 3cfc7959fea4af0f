import json

from lightkube.core.decoders import decode_list, decode_object

from milkyway.kube.resources import FLOWRUN, FlowRunSummary, plain


def flow_run(name: str = "run-1") -> dict:
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "FlowRun",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "resourceVersion": "42",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"milkyway.ebay.com/application": "app"},
            "managedFields": [{"manager": "milkyway", "operation": "Update"}],
        },
        "spec": {"flow": "milkyway-provision", "params": {"zones": ["z0"] * 50}},
        "status": {
            "phase": "Failed",
            "progress": "3/7",
            "message": "step failed",
            "snapshot": {"milkyway-provision@1": {"steps": [{"name": "x"}] * 50}},
            "nodes": {
                "/": {"phase": "Failed", "message": "", "attempts": [{"n": 1}] * 20},
                "/apply": {"phase": "Failed", "message": "boom", "params": {"a": 1}},
            },
            "leaseUntil": 123.0,
        },
    }


def test_the_summary_keeps_what_the_operator_reads_and_nothing_else() -> None:
    summary = plain(decode_object(json.dumps(flow_run()).encode(), FlowRunSummary))
    assert summary == {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "FlowRun",
        "metadata": {
            "name": "run-1",
            "namespace": "ns",
            "resourceVersion": "42",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"milkyway.ebay.com/application": "app"},
        },
        "spec": {"flow": "milkyway-provision"},
        "status": {
            "phase": "Failed",
            "progress": "3/7",
            "message": "step failed",
            "nodes": {
                "/": {"phase": "Failed", "message": ""},
                "/apply": {"phase": "Failed", "message": "boom"},
            },
        },
    }


def test_a_run_without_status_yet_decodes_and_lists_decode_too() -> None:
    bare = flow_run("fresh")
    del bare["status"]
    body = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "9"}}
    body["items"] = [bare, flow_run()]
    _, version, items = decode_list(json.dumps(body).encode(), FlowRunSummary)
    assert version == "9"
    assert [plain(i).get("status", {}).get("phase") for i in items] == [None, "Failed"]


def test_the_summary_addresses_the_same_api_as_flowruns() -> None:
    assert FlowRunSummary._api_info.resource == FLOWRUN._api_info.resource
    assert FlowRunSummary._api_info.plural == FLOWRUN._api_info.plural

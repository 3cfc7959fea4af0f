"""Pure helpers of the Application verbs: document splitting, spec edits, summaries."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from milkyway.cli.app_commands import (
    _now,
    flow_summary,
    split_documents,
    validate_documents,
)
from milkyway.cli.demo import is_ready, member_kubeconfig
from milkyway.components import builtin_component_types
from milkyway.model.edits import EditError, params_edit, parse_assignments, scale_edit, upgrade_edit
from milkyway.model.errors import ValidationFailed

STREAM1 = Path(__file__).parents[3] / "examples" / "stream1.yaml"


def _spec() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(STREAM1.read_text())["spec"])


def test_split_documents_keeps_file_line_numbers() -> None:
    text = "a: 1\n---\n\n# comment only\n---\nb: 2\nc: 3\n"
    parts = split_documents(text)
    assert [yaml.safe_load(p) for p in parts] == [{"a": 1}, {"b": 2, "c": 3}]
    assert parts[1].splitlines()[5] == "b: 2"


def test_invalid_documents_report_file_lines_and_document_numbers() -> None:
    good = STREAM1.read_text()
    bad = good.replace("size: 1", "size: -1", 1)
    texts = split_documents(good + "---\n" + bad)
    with pytest.raises(ValidationFailed) as caught:
        validate_documents(texts, builtin_component_types(), "default")
    (error,) = caught.value.errors
    assert error.path.startswith("document 2: spec.components[3]")
    assert error.value == -1
    offending = (good + "---\n" + bad).splitlines()[error.line - 1]
    assert "size: -1" in offending


def test_documents_of_other_apis_are_refused_with_the_fix() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_documents(["apiVersion: v1\nkind: ConfigMap\n"], builtin_component_types(), "x")
    assert "kubectl" in caught.value.errors[0].fix


@given(st.integers(min_value=-5, max_value=500), st.booleans())
def test_assignments_read_values_as_yaml(number: int, quoted: bool) -> None:
    raw = f'"{number}"' if quoted else str(number)
    assert parse_assignments([f"k={raw}"]) == {"k": str(number) if quoted else number}


def test_assignments_remove_and_reject() -> None:
    assert parse_assignments(["a-", "b=x=y"]) == {"a": None, "b": "x=y"}
    with pytest.raises(EditError, match="KEY=VALUE"):
        parse_assignments(["novalue"])


def test_scale_edit_resizes_or_adds_a_zone() -> None:
    spec = _spec()
    assert scale_edit("kafka1", "phx", 5, None)(spec) == "kafka1: zone phx size 3 -> 5"
    with pytest.raises(EditError, match="--region"):
        scale_edit("kafka1", "ams", 3, None)(spec)
    scale_edit("kafka1", "ams", 3, "EU")(spec)
    kafka = next(c for c in spec["components"] if c["name"] == "kafka1")
    assert kafka["regions"][1] == {"name": "EU", "zones": [{"name": "ams", "size": 3}]}


def test_upgrade_edit_clears_zone_overrides() -> None:
    spec = _spec()
    zk = spec["components"][0]
    zk["regions"][0]["zones"][0]["version"] = "3.4.7"
    upgrade_edit("zookeeper1", "3.4.14", None)(spec)
    assert zk["version"] == "3.4.14" and "version" not in zk["regions"][0]["zones"][0]
    upgrade_edit("zookeeper1", "3.8.4", "phx")(spec)
    assert zk["regions"][0]["zones"][0]["version"] == "3.8.4"


def test_params_edit_drops_an_emptied_map() -> None:
    spec = _spec()
    params_edit("zookeeper1", {"tickTime": 3000}, None)(spec)
    assert spec["components"][0]["params"] == {"tickTime": 3000}
    params_edit("zookeeper1", {"tickTime": None}, None)(spec)
    assert "params" not in spec["components"][0]


def test_flow_summary_counts_tasks_and_names_running_ones() -> None:
    run = {
        "status": {
            "phase": "Running",
            "nodes": {
                "a": {"kind": "task", "name": "apply", "phase": "Succeeded"},
                "b": {"kind": "task", "name": "roll[0]", "phase": "Running"},
                "c": {"kind": "task", "name": "gate", "phase": "Running", "role": "gate"},
                "d": {"kind": "group", "name": "roll", "phase": "Running"},
            },
        }
    }
    assert flow_summary(run) == ("Running", "1/2", "roll[0]")


def test_member_kubeconfig_keeps_only_its_context() -> None:
    full = {
        "clusters": [{"name": "a", "cluster": {}}, {"name": "b", "cluster": {}}],
        "users": [{"name": "a-admin", "user": {}}, {"name": "b-admin", "user": {}}],
        "contexts": [
            {"name": "a", "context": {"cluster": "a", "user": "a-admin"}},
            {"name": "b", "context": {"cluster": "b", "user": "b-admin"}},
        ],
        "current-context": "a",
    }
    one = member_kubeconfig(full, "b")
    assert one["current-context"] == "b"
    assert [c["name"] for c in one["clusters"]] == ["b"]
    assert [u["name"] for u in one["users"]] == ["b-admin"]


def test_ready_needs_the_current_generation() -> None:
    ready = {"type": "Ready", "status": "True"}
    stale = {
        "metadata": {"generation": 2},
        "status": {"observedGeneration": 1, "conditions": [ready]},
    }
    fresh = {
        "metadata": {"generation": 2},
        "status": {"observedGeneration": 2, "conditions": [ready]},
    }
    assert not is_ready(stale) and is_ready(fresh)


def test_a_request_is_stamped_with_the_next_whole_second() -> None:
    before = dt.datetime.now(dt.UTC)
    stamp = dt.datetime.fromisoformat(_now().replace("Z", "+00:00"))
    assert stamp.microsecond == 0
    assert before < stamp <= before + dt.timedelta(seconds=1)

"""Loading Applications: the talk's manifest works as written; problems come all at once,
each with path, value, fix and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from milkyway.components import builtin_component_types
from milkyway.model import ValidationFailed, load_application, load_resolved
from milkyway.model.errors import FieldError, format_path
from milkyway.model.load import with_lines
from milkyway.model.source import parse_yaml

from .conftest import stream1_text


def test_the_talks_application_loads_as_written() -> None:
    app = load_application(stream1_text())
    assert app.metadata.name == "stream1"
    assert app.metadata.namespace == "milkyway"
    names = [c.name for c in app.spec.components]
    assert names == ["zookeeper1", "kafka1", "zookeeper2", "flink-jobmanager", "flink-taskmanager"]
    assert [c.version for c in app.spec.components] == ["3.4.7", "1.1.0", "3.4.7", "1.4.2", "1.4.2"]
    assert all(c.config == "default" and c.type is None for c in app.spec.components)
    assert app.spec.components[3].regions[0].zones[0].size == 1
    assert app.spec.components[0].regions[0].name == "NA"


def test_the_talks_one_line_form_is_equivalent() -> None:
    flow = (Path(__file__).parent / "data" / "stream1-flow.yaml").read_text()
    assert load_application(flow).spec == load_application(stream1_text()).spec


def test_all_problems_are_reported_at_once_with_lines() -> None:
    text = (
        stream1_text()
        .replace("version: 3.4.7", "version: 3.10", 1)
        .replace("size: 1\n", "size: -1\n")
        .replace("config: default\n", "confg: default\n", 1)
    )
    with pytest.raises(ValidationFailed) as caught:
        load_application(text)
    errors = {e.path: e for e in caught.value.errors}
    assert set(errors) == {
        "spec.components[0].version",
        "spec.components[0].confg",
        "spec.components[3].regions[0].zones[0].size",
    }
    version = errors["spec.components[0].version"]
    assert version.value == 3.1
    assert "3.10" in version.message and "3.1" in version.message
    assert version.fix == 'quote it: version: "3.10"'
    assert version.line == text.splitlines().index("      version: 3.10") + 1
    assert "did you mean `config`" in errors["spec.components[0].confg"].fix


def test_quoted_versions_are_accepted() -> None:
    text = stream1_text().replace("version: 3.4.7", 'version: "3.4.14"', 1)
    assert load_application(text).spec.components[0].version == "3.4.14"


def test_errors_render_as_one_readable_line() -> None:
    error = FieldError("spec.x", 3, "bad", "do y", line=4)
    assert str(error) == "spec.x (line 4) = 3: bad; fix: do y"
    assert error.to_dict()["line"] == 4
    assert format_path(("spec", "components", 2, "name")) == "spec.components[2].name"


def test_source_map_keeps_raw_text_of_unquoted_scalars_only() -> None:
    data, source = parse_yaml("a: 3.10\nb: '3.10'\nc: [NO, yes]\n")
    assert data == {"a": 3.1, "b": "3.10", "c": [False, True]}
    assert source.scalars[("a",)].text == "3.10"
    assert ("b",) not in source.scalars
    assert source.scalars[("c", 0)].text == "NO"
    assert source.line(("c", 1)) == 3


def test_load_resolved_adds_lines_to_type_errors() -> None:
    text = stream1_text().replace("version: 1.1.0", "version: 9.9.9")
    with pytest.raises(ValidationFailed) as caught:
        load_resolved(text, builtin_component_types())
    [error] = caught.value.errors
    assert error.path == "spec.components[1].version"
    assert error.line == text.splitlines().index("      version: 9.9.9") + 1
    assert "1.1.0" in error.fix


def test_status_written_by_the_operator_round_trips() -> None:
    data = yaml.safe_load(stream1_text())
    data["status"] = {
        "phase": "Running",
        "observedGeneration": 3,
        "members": {"zookeeper1": {"nextId": 4, "zones": {"phx": {"ids": [1, 2, 3]}}}},
        "components": {"kafka1": {"zones": {"phx": {"desired": 3, "ready": 2}}}},
    }
    app = load_application(yaml.safe_dump(data))
    assert app.status.members["zookeeper1"].zones["phx"].ids == [1, 2, 3]
    assert app.to_wire()["status"]["observedGeneration"] == 3


def test_yaml_pitfalls_do_not_hide_problems_found_against_the_types() -> None:
    text = (
        stream1_text()
        .replace("version: 1.1.0", "version: 1.10")
        .replace("size: 3", "size: 4", 1)
        .replace("kind: Application", "kind: App")
    )
    with pytest.raises(ValidationFailed) as caught:
        load_resolved(text, builtin_component_types())
    found = [(e.path, e.message.split(":")[0]) for e in caught.value.errors]
    assert ("kind", "not an Application") in found
    assert (
        "spec.components[1].version",
        "YAML reads the unquoted `1.10` as the number 1.1, not the text `1.10`",
    ) in found
    assert ("spec.components[1].version", "kafka has no version '1.10'") in found
    assert ("spec.components[0].regions", "zookeeper needs a majority quorum") in found


def test_lines_fall_back_to_the_nearest_known_ancestor() -> None:
    _, source = parse_yaml("spec:\n  components:\n    - name: a\n")
    errors = [
        FieldError("spec.components[0].uses.zk", None, "m", "f"),
        FieldError("metadata.name", None, "m", "f"),
        FieldError("kind", None, "m", "f"),
    ]
    assert [e.line for e in with_lines(errors, source)] == [3, None, None]

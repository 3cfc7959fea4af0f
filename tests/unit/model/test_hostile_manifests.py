"""Hostile manifests: alias bombs, recursive aliases, deep nesting, bad encodings, odd tags
and huge values give ``milkyway validate`` one error line naming the file, the line and
the problem, fast and without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from milkyway.cli.main import app
from milkyway.model.errors import DocumentUnreadable
from milkyway.model.source import MAX_NODES, load_documents, parse_yaml

from .conftest import stream1_text

runner = CliRunner()


def billion_laughs(levels: int = 9, fan_out: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan_out) + "]" for i in range(1, levels)
    ]
    return "apiVersion: milkyway.ebay.com/v1\nkind: Application\n" + "\n".join(lines) + "\n"


HOSTILE: dict[str, tuple[str | bytes, int | None, str]] = {
    "billion laughs": (billion_laughs(), 3, "aliases are expanded"),
    "recursive alias": ("a: &a\n  b: *a\n", 1, "recursive alias"),
    "recursive list alias": ("a: &a [1, *a]\n", 1, "recursive alias"),
    "nested 1000 deep (flow)": ("a: " + "[" * 1000 + "]" * 1000 + "\n", 1, "more than 100 levels"),
    "nested 1000 deep (block)": (
        "".join(" " * i + f"k{i}:\n" for i in range(1000)),
        101,
        "more than 100 levels",
    ),
    "not UTF-8": (b"apiVersion: v1\nkind: \xff\xfe\n", 2, "not UTF-8"),
    "custom tag": ("apiVersion: !foo bar\n", 1, "tag !foo is not allowed"),
    "python tag": ("a: !!python/object:os.system x\n", 1, "is not allowed"),
    "bad int": ("a: 1\nb: !!int abc\n", 2, "'abc' is not a valid !!int"),
    "bad bool": ("b: !!bool maybe\n", 1, "is not a valid !!bool"),
    "binary": ("a: !!binary aGVsbG8=\n", 1, "tag !!binary is not allowed"),
    "set": ("a: !!set {x, y}\n", 1, "tag !!set is not allowed"),
    "list as key": ("? [a, b]\n: c\n", 1, "mapping key must be"),
    "syntax": ("a: [b\nc: :", 2, "not valid YAML"),
    "two documents": ("a: 1\n---\nb: 2\n", None, "exactly one YAML document"),
    "merge bomb": (
        "a0: &a0 {x0: 1, x1: 1}\n"
        + "".join(f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], y{i}: 1}}\n" for i in range(1, 40)),
        None,
        "aliases are expanded",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_validate_gives_one_line_naming_file_line_and_problem(tmp_path: Path, name: str) -> None:
    content, line, problem = HOSTILE[name]
    file = tmp_path / "app.yaml"
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content)
    result = runner.invoke(app, ["validate", "-f", str(file)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    output = result.output.strip()
    assert "\n" not in output, output
    assert output.startswith(f"error: {file}"), output
    if line is not None:
        assert f"{file}: line {line}:" in output, output
    assert problem in output, output


@pytest.mark.parametrize("name", ["billion laughs", "custom tag", "nested 1000 deep (flow)"])
def test_apply_refuses_hostile_files_before_any_cluster_is_asked(tmp_path: Path, name: str) -> None:
    content, line, problem = HOSTILE[name]
    file = tmp_path / "app.yaml"
    file.write_text(str(content))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "
        "'https://127.0.0.1:9'}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
        "users: [{name: u, user: {token: t}}]\ncurrent-context: c\n"
    )
    result = runner.invoke(app, ["apply", "-f", str(file), "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert problem in result.output
    assert f"{file}: line {line}:" in result.output


def test_a_billion_laughs_is_refused_without_expanding_it() -> None:
    with pytest.raises(DocumentUnreadable) as caught:
        parse_yaml(billion_laughs(levels=12))
    assert str(MAX_NODES) in caught.value.problem


def test_aliases_within_the_limit_still_work() -> None:
    data, _ = parse_yaml("base: &b {x: 1}\na: *b\nm:\n  <<: *b\n  y: 2\n")
    assert data == {"base": {"x": 1}, "a": {"x": 1}, "m": {"x": 1, "y": 2}}


def test_dates_stay_text_and_keys_become_strings() -> None:
    (data,) = load_documents("when: 2024-01-02\n1: one\ntrue: yes\n")
    assert data == {"when": "2024-01-02", "1": "one", "true": True}


def test_validate_json_output_reports_binary_values(tmp_path: Path) -> None:
    file = tmp_path / "app.yaml"
    file.write_text(stream1_text().replace("name: stream1", "name: !!binary aGVsbG8=", 1))
    result = runner.invoke(app, ["validate", "-f", str(file), "-o", "json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["valid"] is False
    assert "!!binary is not allowed" in report["errors"][0]["message"]


def test_validate_json_output_keeps_dates_as_text(tmp_path: Path) -> None:
    file = tmp_path / "app.yaml"
    file.write_text(stream1_text().replace("name: stream1", "name: 2024-01-02", 1))
    result = runner.invoke(app, ["validate", "-f", str(file), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["application"].endswith("/2024-01-02")


def test_a_huge_value_is_cut_in_the_error_table(tmp_path: Path) -> None:
    huge = "x" * 2_000_000
    file = tmp_path / "app.yaml"
    file.write_text(stream1_text().replace("name: stream1", f"name: {huge}", 1))
    result = runner.invoke(app, ["validate", "-f", str(file)])
    assert result.exit_code == 1
    assert len(result.output) < 20_000
    assert "(2000000 characters)" in result.output.replace("\n", "").replace("│", "").replace(
        " ", ""
    ) or "2000000 characters" in result.output.replace("\n", "")


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    file = tmp_path / "app.yaml"
    file.write_text("a: " + "x" * (4 * 1024 * 1024) + "\n")
    result = runner.invoke(app, ["validate", "-f", str(file)])
    assert result.exit_code == 1
    assert "the limit is 3145728" in result.output
    assert "\n" not in result.output.strip()


def test_brackets_in_values_are_printed_not_read_as_markup(tmp_path: Path) -> None:
    file = tmp_path / "[x].yaml"
    file.write_text(stream1_text().replace("name: stream1", "name: '[/][bold]x[/bold]'", 1))
    result = runner.invoke(app, ["validate", "-f", str(file)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "[/][bold]x[/bold]" in result.output.replace("\n", "")
    assert "[x].yaml" in result.output

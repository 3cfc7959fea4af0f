"""``milkyway validate`` and ``milkyway render``."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from milkyway.cli.main import app

from .conftest import EXAMPLES, stream1_text

runner = CliRunner()


def test_validate_accepts_the_talks_application() -> None:
    result = runner.invoke(app, ["validate", "-f", str(EXAMPLES / "stream1.yaml")])
    assert result.exit_code == 0, result.output
    assert "milkyway/stream1: valid" in result.output
    assert "kafka1: kafka 1.1.0 as statefulset, 3 member(s), uses zookeeper -> zookeeper1" in (
        result.output
    )


def test_validate_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        stream1_text()
        .replace("version: 3.4.7", "version: 3.10", 1)
        .replace("size: 1\n", "size: 0\n              sise: 2\n")
    )
    result = runner.invoke(app, ["validate", "-f", str(bad), "-o", "json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["valid"] is False
    paths = {e["path"] for e in report["errors"]}
    assert paths == {"spec.components[0].version", "spec.components[3].regions[0].zones[0].sise"}
    text = runner.invoke(app, ["validate", "-f", str(bad)])
    assert text.exit_code == 1
    assert "quote it" in text.output


def test_validate_reads_extra_component_types(tmp_path: Path) -> None:
    ctype = {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "ComponentType",
        "metadata": {"name": "redis"},
        "spec": {
            "versions": [{"version": "7.2", "image": "redis:7.2"}],
            "profiles": {"default": {}},
            "container": {"start": "exec redis-server"},
        },
    }
    types = tmp_path / "types.yaml"
    types.write_text(yaml.safe_dump(ctype))
    application = yaml.safe_load(stream1_text())
    application["spec"]["components"] = [
        {
            "name": "redis1",
            "version": "7.2",
            "regions": [{"name": "NA", "zones": [{"name": "phx", "size": 1}]}],
        }
    ]
    file = tmp_path / "app.yaml"
    file.write_text(yaml.safe_dump(application))
    assert runner.invoke(app, ["validate", "-f", str(file)]).exit_code == 1
    result = runner.invoke(app, ["validate", "-f", str(file), "-t", str(types)])
    assert result.exit_code == 0, result.output


def test_render_prints_valid_yaml_for_one_zone_and_component() -> None:
    result = runner.invoke(
        app,
        ["render", "-f", str(EXAMPLES / "stream1.yaml"), "--zone", "phx", "--component", "kafka1"],
    )
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.output))
    assert [d["kind"] for d in documents] == [
        "ConfigMap",
        "Service",
        "PodDisruptionBudget",
        "StatefulSet",
    ]
    assert all(
        d["metadata"]["labels"]["milkyway.ebay.com/component"] == "kafka1" for d in documents
    )


def test_render_selects_the_zones_of_a_cluster() -> None:
    result = runner.invoke(
        app,
        [
            "render",
            "-f",
            str(EXAMPLES / "multi-region.yaml"),
            "--clusters",
            str(EXAMPLES / "clusters.yaml"),
            "--cluster",
            "eu-ams-1",
        ],
    )
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.output))
    assert {d["metadata"]["labels"]["milkyway.ebay.com/zone"] for d in documents} == {"ams"}
    assert "# Source: orders/zookeeper zone ams cluster eu-ams-1" in result.output


def test_render_rejects_unknown_zone_and_invalid_application(tmp_path: Path) -> None:
    result = runner.invoke(app, ["render", "-f", str(EXAMPLES / "stream1.yaml"), "--zone", "mars"])
    assert result.exit_code == 2
    assert "no zone 'mars'" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(stream1_text().replace("size: 3", "size: 4", 1))
    result = runner.invoke(app, ["render", "-f", str(bad)])
    assert result.exit_code == 1
    missing = runner.invoke(app, ["render", "-f", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2


def test_render_names_a_bad_cluster_file(tmp_path: Path) -> None:
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text(
        "apiVersion: milkyway.ebay.com/v1\nkind: Cluster\nmetadata: {name: c1}\n"
        "spec: {region: NA}\n"
    )
    result = runner.invoke(
        app, ["render", "-f", str(EXAMPLES / "stream1.yaml"), "--clusters", str(clusters)]
    )
    assert result.exit_code == 2
    assert "spec.zone" in result.output


def test_render_reports_a_broken_template(tmp_path: Path) -> None:
    ctype = {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "ComponentType",
        "metadata": {"name": "redis"},
        "spec": {
            "versions": [{"version": "7.2", "image": "redis:7.2"}],
            "configFiles": [{"name": "redis.conf", "template": "port {{ ports.missing }}"}],
            "profiles": {"default": {}},
            "container": {"start": "exec redis-server"},
        },
    }
    types = tmp_path / "types.yaml"
    types.write_text(yaml.safe_dump(ctype))
    application = yaml.safe_load(stream1_text())
    application["spec"]["components"] = [
        {
            "name": "redis1",
            "version": "7.2",
            "regions": [{"name": "NA", "zones": [{"name": "phx", "size": 1}]}],
        }
    ]
    file = tmp_path / "app.yaml"
    file.write_text(yaml.safe_dump(application))
    result = runner.invoke(app, ["render", "-f", str(file), "-t", str(types)])
    assert result.exit_code == 1
    assert "ComponentType redis redis.conf" in result.output
    assert "missing" in result.output

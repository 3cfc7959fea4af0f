"""`milkyway cluster register` refuses what it cannot use before touching any cluster."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from milkyway.cli.main import app


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["cluster", "register", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_missing_member_kubeconfig(tmp_path: Path) -> None:
    code, output = _invoke(
        "na-phx", "--zone", "phx", "--region", "NA", "--kubeconfig", str(tmp_path / "nope")
    )
    assert code == 2
    assert "does not exist" in output and "--kubeconfig" in output


def test_unknown_member_context(tmp_path: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "na-phx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "na-phx",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    code, output = _invoke(
        "na-phx", "--zone", "phx", "--region", "NA", "--kubeconfig", str(path), "--context", "x"
    )
    assert code == 2
    assert "context 'x' is not in the kubeconfig" in output and "na-phx" in output


def test_short_token_lifetime_is_refused(tmp_path: Path) -> None:
    code, output = _invoke(
        "na-phx",
        "--zone",
        "phx",
        "--region",
        "NA",
        "--kubeconfig",
        str(tmp_path / "k"),
        "--token-seconds",
        "60",
    )
    assert code == 2 and "token-seconds" in output

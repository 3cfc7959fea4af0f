"""``milkyway sim fault`` finds the simulator through ``$KUBECONFIG`` as the docs say."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from milkyway.cli.main import app


def _faults(env: dict[str, str], *extra: str) -> str:
    result = CliRunner().invoke(app, ["sim", "fault", "list", *extra], env=env)
    assert result.exit_code == 2, result.output
    return " ".join(result.output.split())


def test_kubeconfig_comes_from_the_environment_then_the_option(tmp_path: Path) -> None:
    exported = tmp_path / "exported" / "kubeconfig"
    other = tmp_path / "other" / "kubeconfig"
    env = {"KUBECONFIG": f"{exported}{os.pathsep}{other}", "MILKYWAY_SIM_KUBECONFIG": ""}
    assert f"{exported}.admin.json not found" in _faults(env)
    assert f"{other}.admin.json not found" in _faults(env, "--kubeconfig", str(other))
    env["MILKYWAY_SIM_KUBECONFIG"] = str(other)
    assert f"{other}.admin.json not found" in _faults(env)

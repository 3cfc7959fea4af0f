"""``milkyway operator run --heap-profile``: a file in a folder that does not exist is
refused before anything starts, naming the option, the value and the fix."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from milkyway.cli.main import app


def test_a_heap_profile_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "heap.txt"
    result = CliRunner().invoke(
        app,
        ["operator", "run", f"--kubeconfig={tmp_path / 'none'}", f"--heap-profile={target}"],
    )
    assert result.exit_code == 2, result.output
    assert f"--heap-profile {target}" in result.output
    assert "does not exist" in result.output
    assert "existing folder" in result.output
    assert not target.parent.exists()

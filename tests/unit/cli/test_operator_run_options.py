"""``milkyway operator run --heap-profile`` and ``--resync``: a file in a folder that does
not exist, or a resync period under a second, is refused before anything starts, naming
the option, the value and the fix."""

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


def test_a_resync_under_a_second_is_refused_naming_the_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["operator", "run", f"--kubeconfig={tmp_path / 'none'}", "--resync", "0.5"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 2, result.output
    assert "--resync 0.5" in result.output and "at least 1 second" in result.output


def test_the_operator_resyncs_every_five_minutes_unless_told() -> None:
    from milkyway.operator.manager import OperatorSettings

    assert OperatorSettings().resync_period == 300.0
    help_text = CliRunner().invoke(app, ["operator", "run", "--help"], env={"COLUMNS": "200"})
    assert "--resync" in help_text.output and "300" in help_text.output

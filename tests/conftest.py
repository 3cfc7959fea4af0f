"""Fixtures shared by every test layer."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_signed_in_server(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``milkyway login`` of whoever runs the tests makes that server the CLI's default;
    the tests' commands must talk to their own clusters (or servers) instead."""
    sessions: Path = tmp_path_factory.mktemp("sessions") / "sessions.json"
    monkeypatch.setenv("MILKYWAY_SESSIONS", str(sessions))
    monkeypatch.delenv("MILKYWAY_SERVER", raising=False)

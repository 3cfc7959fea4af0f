"""Fixtures shared by every test layer."""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("milkyway", deadline=None)
settings.load_profile("milkyway")
"""No per-example deadline: a first example that meets a garbage collection or a busy
machine took 485 ms against Hypothesis's 200 ms default and failed a correct test. Speed
is measured by the bench/ scripts, not asserted in tests."""


@pytest.fixture(autouse=True)
def _no_signed_in_server(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``milkyway login`` of whoever runs the tests makes that server the CLI's default;
    the tests' commands must talk to their own clusters (or servers) instead."""
    sessions: Path = tmp_path_factory.mktemp("sessions") / "sessions.json"
    monkeypatch.setenv("MILKYWAY_SESSIONS", str(sessions))
    monkeypatch.delenv("MILKYWAY_SERVER", raising=False)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A command run in-process (Typer's CliRunner) configures logging for its process: a
    handler on the runner's captured stream would outlive the test and, in every later
    test of the same worker, fail on the closed stream ("--- Logging error ---" in the
    output of the next command a test parses). Each test gets logging back as it was."""
    loggers = [logging.getLogger(), logging.getLogger("milkyway")]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    yield
    for lg, handlers, level, propagate in saved:
        for handler in list(lg.handlers):
            if handler not in handlers and not type(handler).__module__.startswith("_pytest"):
                lg.removeHandler(handler)
        for handler in handlers:
            if handler not in lg.handlers:
                lg.addHandler(handler)
        lg.setLevel(level)
        lg.propagate = propagate

"""JSON log lines carry the Application, run and request id of the context they are
logged in."""

from __future__ import annotations

import asyncio
import json
import logging

from milkyway.telemetry.logs import JsonFormatter, log_context


def _line(record: logging.LogRecord) -> dict[str, str]:
    return json.loads(JsonFormatter().format(record))


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("milkyway.test", logging.INFO, __file__, 1, message, (), None)


def test_context_fields_on_every_line_inside_the_block() -> None:
    with log_context(application="team-a/stream1"), log_context(run="provision-1"):
        inside = _line(_record("inside"))
    outside = _line(_record("outside"))
    assert inside["application"] == "team-a/stream1" and inside["run"] == "provision-1"
    assert inside["message"] == "inside" and inside["level"] == "info"
    assert "application" not in outside and "run" not in outside


def test_tasks_inherit_and_do_not_leak_their_context() -> None:
    async def main() -> tuple[dict[str, str], dict[str, str]]:
        async def request() -> dict[str, str]:
            with log_context(request_id="abc123"):
                await asyncio.sleep(0)
                return _line(_record("handled"))

        handled = await asyncio.create_task(request())
        return handled, _line(_record("after"))

    handled, after = asyncio.run(main())
    assert handled["request_id"] == "abc123"
    assert "request_id" not in after


def test_exceptions_are_kept() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "milkyway.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    assert "RuntimeError: boom" in _line(record)["exception"]

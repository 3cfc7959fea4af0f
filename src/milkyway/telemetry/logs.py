"""Log configuration: the usual text lines, or one JSON object per line
(``--log-format json``) carrying the Application, flow run and request id that the code
handling it has put in :data:`LOG_CONTEXT`, so a log pipeline can select every line about
one Application or one request."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

LOG_CONTEXT: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "milkyway_log_context", default=MappingProxyType({})
)
"""Fields added to every line logged in this context (``application``, ``run``,
``request_id``); asyncio tasks inherit the context they were created in."""

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
QUIET_LOGGERS = ("httpx", "httpx2", "httpcore")


@contextlib.contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Add ``fields`` to every line logged inside the ``with`` block."""
    token = LOG_CONTEXT.set({**LOG_CONTEXT.get(), **fields})
    try:
        yield
    finally:
        LOG_CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (RFC 3339, UTC), level, logger, message, the
    context's fields, and the exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(LOG_CONTEXT.get())
        for key in ("application", "run", "request_id"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str = "text", verbose: bool = False) -> None:
    """Configure the root logger for a Milkyway process."""
    if log_format not in LOG_FORMATS:
        raise ValueError(
            f"--log-format {log_format!r} is not known; use one of {', '.join(LOG_FORMATS)}"
        )
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)

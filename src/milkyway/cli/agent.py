"""``milkyway agent``: the sidecar agent process of a member pod.

It reads the type's agent declaration from the pod's config volume and the pod's identity
from the environment (the rendered pod sets both), serves until SIGTERM or Ctrl-C, and
writes one JSON line per action decision to standard output (the audit trail of who ran
what on this member).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import typer

from milkyway.agent.config import (
    DEFAULT_CONFIG_DIR,
    DEFAULT_KEYS_DIR,
    AgentConfigError,
    load_settings,
)
from milkyway.agent.http import serve
from milkyway.agent.service import AgentService


def agent(
    config_dir: Path = typer.Option(
        DEFAULT_CONFIG_DIR, "--config-dir", help="directory holding agent.json and the config files"
    ),
    keys_dir: Path = typer.Option(
        DEFAULT_KEYS_DIR, "--keys-dir", help="directory of the operator's public keys (*.pub)"
    ),
    port: int | None = typer.Option(None, "--port", help="port to serve (default 8471)"),
    listen: str | None = typer.Option(
        None, "--listen", help="address to bind (default: $MILKYWAY_POD_IP or 127.0.0.1)"
    ),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR"),
) -> None:
    """Run the sidecar agent of a member pod: health, metrics, logs, disk alerts, actions."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stdout, format="%(message)s")
    try:
        settings = load_settings(config_dir, keys_dir, port=port, listen=listen)
    except AgentConfigError as error:
        typer.echo(f"milkyway agent: {error}", err=True)
        raise typer.Exit(2) from None
    asyncio.run(_run(AgentService(settings)))


async def _run(service: AgentService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        runner = await serve(service)
    except OSError as error:
        settings = service.settings
        typer.echo(
            f"milkyway agent: cannot listen on {settings.listen}:{settings.port}: {error}", err=True
        )
        await service.stop()
        raise typer.Exit(1) from None
    logging.getLogger(__name__).info(
        '{"agent": "%s", "listening": "%s:%d"}',
        service.audience,
        service.settings.listen,
        service.settings.port,
    )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await service.stop()

"""The ``milkyway`` executable.

``milkyway agent`` starts without loading the other commands (the simulator, the
operator, the REST server): it runs in every member pod, where its memory is paid once
per member. Everything else goes to the full command line in :mod:`milkyway.cli.main`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["agent"]:
        import typer

        from milkyway.cli.agent import agent

        sys.argv = [f"{sys.argv[0]} agent", *sys.argv[2:]]
        typer.run(agent)
        return
    from milkyway.cli.main import main as full_command_line

    full_command_line()

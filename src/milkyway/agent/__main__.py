"""``python -m milkyway.agent``: the agent without loading the rest of the command line
(the sidecar's memory is what every member pod pays)."""

from __future__ import annotations

import typer

from milkyway.cli.agent import agent

if __name__ == "__main__":
    typer.run(agent)

"""``--tasks MODULE``: load modules whose ``@task`` functions register themselves.

``milkyway flow run``, ``milkyway flow engine`` and ``milkyway operator run`` take it, so a
ComponentType whose flows call tasks of its own runs under the stock command.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import typer


def import_task_modules(modules: list[str]) -> None:
    """Import modules (dotted names or ``.py`` paths) whose ``@task`` functions register."""
    for module in modules:
        if module.endswith(".py"):
            path = Path(module)
            if not path.is_file():
                raise typer.BadParameter(f"--tasks {module!r}: no such file")
            spec = importlib.util.spec_from_file_location(f"milkyway_tasks_{path.stem}", path)
            if spec is None or spec.loader is None:
                raise typer.BadParameter(f"--tasks {module!r}: not a Python module")
            loaded = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(loaded)
        else:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name is None or not module.startswith(exc.name):
                    raise
                raise typer.BadParameter(
                    f"--tasks {module!r}: no such module (a dotted name importable from "
                    "this Python, or a path ending in .py)"
                ) from None

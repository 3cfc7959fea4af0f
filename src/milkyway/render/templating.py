"""Sandboxed Jinja2 rendering of the templates ComponentTypes carry.

Templates come from ComponentType resources users create, so they run in Jinja2's
immutable sandbox (no attribute access to Python internals, no mutation of the context)
with strict undefined variables: a misspelt variable is an error, not an empty string.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


class RenderError(ValueError):
    """A ComponentType template failed; names the type and the template."""


def version_tuple(version: str) -> tuple[int, ...]:
    """``3.4.7`` to ``(3, 4, 7)``; the leading digits of each dot-separated part."""
    parts = []
    for part in str(version).split("."):
        match = re.match(r"\d+", part)
        if match is None:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def _version_at_least(version: str, minimum: str) -> bool:
    return version_tuple(version) >= version_tuple(minimum)


@cache
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.tests["version_at_least"] = _version_at_least
    return env


@lru_cache(maxsize=512)
def _compile(source: str) -> Template:
    return environment().from_string(source)


def render_template(source: str, context: dict[str, Any], where: str) -> str:
    """Render ``source`` with ``context``; ``where`` names the template in errors."""
    try:
        return _compile(source).render(context)
    except TemplateError as exc:
        raise RenderError(f"{where}: {exc}") from exc

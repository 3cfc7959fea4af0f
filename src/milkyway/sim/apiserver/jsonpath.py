"""The JSONPath subset of ``additionalPrinterColumns``: field paths into one object.

A printer column's ``jsonPath`` is a simple path such as ``.status.replicas``,
``.spec.containers[0].image``, ``.metadata.labels['app.kubernetes.io/name']`` or
``.spec.items[*].name``; the CRD is rejected when it is anything else.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_$@-]+)"""
    r"""|\[(?P<index>-?\d+)\]"""
    r"""|\[(?P<star>\*)\]"""
    r"""|\[['"](?P<key>[^'"]+)['"]\]"""
    r"""|\.\[?['"]?(?P<bad>.)"""
)

Step = tuple[str, str | int]


def parse(path: str) -> list[Step]:
    """Steps of ``path``; ``ValueError`` says what is wrong with it."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if not text.startswith("."):
        raise ValueError("must be a simple json path starting with .")
    steps: list[Step] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.group("bad") is not None:
            raise ValueError(f"invalid json path at position {position}: {text[position:]!r}")
        if match.group("field") is not None:
            steps.append(("field", match.group("field")))
        elif match.group("index") is not None:
            steps.append(("index", int(match.group("index"))))
        elif match.group("star") is not None:
            steps.append(("star", "*"))
        else:
            steps.append(("field", match.group("key")))
        position = match.end()
    return steps


def evaluate(steps: list[Step], obj: Any) -> list[Any]:
    """Every value ``steps`` reaches in ``obj`` (empty when the path leads nowhere)."""
    current = [obj]
    for kind, arg in steps:
        following: list[Any] = []
        for value in current:
            if kind == "field" and isinstance(value, dict) and arg in value:
                following.append(value[arg])
            elif kind == "index" and isinstance(value, list) and isinstance(arg, int):
                if -len(value) <= arg < len(value):
                    following.append(value[arg])
            elif kind == "star":
                if isinstance(value, list):
                    following.extend(value)
                elif isinstance(value, dict):
                    following.extend(value.values())
        current = following
    return current

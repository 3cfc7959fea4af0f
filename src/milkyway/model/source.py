"""YAML parsing that remembers how each scalar was written.

PyYAML (YAML 1.1) silently turns ``version: 3.10`` into the float ``3.1`` and
``region: NO`` into ``False``. To tell the user *why* such a value is wrong, the parser
keeps, for every unquoted non-string scalar, its line and original text. Duplicate keys,
which PyYAML accepts by keeping the last, are reported too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from milkyway.model.errors import FieldError, ValidationFailed

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Scalar:
    """How one scalar was written in the source."""

    line: int
    text: str
    tag: str


@dataclass
class SourceMap:
    """Where each field came from: line numbers, and raw text of implicitly typed scalars."""

    lines: dict[Path, int] = field(default_factory=dict)
    scalars: dict[Path, Scalar] = field(default_factory=dict)
    duplicates: list[tuple[Path, int]] = field(default_factory=list)

    def line(self, path: Path) -> int | None:
        """Line of ``path``, or of its closest ancestor that is known."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return None


_STR_TAG = "tag:yaml.org,2002:str"


def parse_yaml(text: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain Python data plus its :class:`SourceMap`.

    Raises :class:`ValidationFailed` for YAML syntax errors and multi-document input.
    """
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationFailed(
            [FieldError("", None, f"not valid YAML: {problem}", "fix the YAML syntax", line)]
        ) from None
    nodes = [node for node in nodes if node is not None]
    if len(nodes) != 1:
        raise ValidationFailed(
            [
                FieldError(
                    "",
                    None,
                    f"expected exactly one YAML document, found {len(nodes)}",
                    "put one Application per file",
                )
            ]
        )
    source = SourceMap()
    constructor = yaml.SafeLoader("")
    return _build(nodes[0], (), source, constructor), source


def _build(node: yaml.Node, path: Path, source: SourceMap, constructor: yaml.SafeLoader) -> Any:
    source.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        constructor.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            child = (*path, key)
            if key in result:
                source.duplicates.append((child, key_node.start_mark.line + 1))
            result[key] = _build(value_node, child, source, constructor)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), source, constructor) for i, item in enumerate(node.value)]
    value = constructor.construct_object(node, deep=True)
    if node.tag != _STR_TAG and not node.style:
        source.scalars[path] = Scalar(node.start_mark.line + 1, node.value, node.tag)
    return value

"""YAML parsing that remembers how each scalar was written.

PyYAML (YAML 1.1) silently turns ``version: 3.10`` into the float ``3.1`` and
``region: NO`` into ``False``. To tell the user *why* such a value is wrong, the parser
keeps, for every unquoted non-string scalar, its line and original text. Duplicate keys,
which PyYAML accepts by keeping the last, are reported too.

A manifest is also hostile input: anchors and aliases let a few hundred bytes name
gigabytes ("billion laughs"), an alias may contain itself, nesting may be thousands of
levels deep, and tags may name types no manifest has. The builder counts every node it
produces (aliases included), refuses nesting past :data:`MAX_DEPTH` before composing,
and accepts only the plain JSON types, so a bad file costs milliseconds and gives one
error with its line instead of a traceback or an exhausted memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from milkyway.model.errors import DocumentUnreadable

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


MAX_DOCUMENT_BYTES = 3 * 1024 * 1024
"""Largest manifest read (the Kubernetes API server's request limit)."""

MAX_DEPTH = 100
"""Deepest nesting of mappings and lists in a manifest."""

MAX_NODES = 50_000
"""Most values (aliases expanded) one document may mean."""

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml when present: its parser is iterative, and composing only follows the depth
check."""

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_PLAIN_TAGS = {
    _STR_TAG,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


def parse_yaml(text: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain Python data plus its :class:`SourceMap`.

    Raises :class:`DocumentUnreadable` (a :class:`ValidationFailed`) for YAML syntax
    errors, multi-document input, and documents past the size, nesting or alias limits.
    """
    nodes = _compose(text)
    if len(nodes) != 1:
        raise DocumentUnreadable(
            f"expected exactly one YAML document, found {len(nodes)}",
            "put one Application per file",
            None,
        )
    source = SourceMap()
    return _Builder(source).build(nodes[0], ()), source


def load_documents(text: str) -> list[Any]:
    """Every YAML document of ``text`` as plain data, within the same limits as
    :func:`parse_yaml` (empty documents are left out)."""
    return [_Builder(SourceMap()).build(node, ()) for node in _compose(text)]


def _compose(text: str) -> list[yaml.Node]:
    if len(text) > MAX_DOCUMENT_BYTES:
        raise DocumentUnreadable(
            f"the file is {len(text)} characters long; the limit is {MAX_DOCUMENT_BYTES} "
            "(what the Kubernetes API server accepts in one request)",
            "split the file or remove the oversized values",
            None,
        )
    try:
        _check_depth(text)
        nodes = list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise DocumentUnreadable(
            f"not valid YAML: {problem}", "fix the YAML syntax", line
        ) from None
    return [node for node in nodes if node is not None]


def _check_depth(text: str) -> None:
    """Refuse deep nesting from the event stream, before the (recursive) composer runs."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise DocumentUnreadable(
                    f"the document nests mappings and lists more than {MAX_DEPTH} levels deep",
                    "flatten the document",
                    event.start_mark.line + 1 if event.start_mark else None,
                )
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


class _Builder:
    """Turns composed nodes into plain data, counting every node it produces."""

    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.constructor = yaml.SafeLoader("")
        self.count = 0
        self.active: set[int] = set()

    def build(self, node: yaml.Node, path: Path) -> Any:
        line = node.start_mark.line + 1
        self.count += 1
        if self.count > MAX_NODES:
            raise DocumentUnreadable(
                f"the document means more than {MAX_NODES} values once its aliases are "
                "expanded (an alias bomb?)",
                "write the repeated parts out instead of nesting anchors and aliases",
                line,
            )
        if len(path) > MAX_DEPTH:
            raise DocumentUnreadable(
                f"the document nests more than {MAX_DEPTH} levels deep through its aliases",
                "flatten the document",
                line,
            )
        self.source.lines.setdefault(path, line)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in self.active:
            raise DocumentUnreadable(
                "an alias refers to the mapping or list that contains it (a recursive alias)",
                "replace the alias with the values it should hold",
                line,
            )
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        self._check_tag(node, node.tag in ("tag:yaml.org,2002:map", _MERGE_TAG))
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._merge(value_node, path, merged)
                continue
            key = self._key(key_node)
            child = (*path, key)
            if key in result:
                self.source.duplicates.append((child, key_node.start_mark.line + 1))
            result[key] = self.build(value_node, child)
        return {**{k: v for k, v in merged.items() if k not in result}, **result}

    def _key(self, node: yaml.Node) -> str:
        """A mapping key as text (``1`` and ``true`` as Kubernetes writes them in JSON)."""
        self.count += 1
        if not isinstance(node, yaml.ScalarNode):
            raise DocumentUnreadable(
                "a mapping key must be a string, number or boolean, not a mapping or list",
                "use a plain key",
                node.start_mark.line + 1,
            )
        if node.tag == _STR_TAG:
            return str(node.value)
        key = self._scalar(node, ())
        if isinstance(key, bool):
            return "true" if key else "false"
        return "null" if key is None else str(key)

    def _merge(self, value_node: yaml.Node, path: Path, merged: dict[str, Any]) -> None:
        """``<<: *base`` or ``<<: [*a, *b]``: earlier sources win, explicit keys win over all."""
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            value = self.build(source, path)
            if not isinstance(value, dict):
                raise DocumentUnreadable(
                    "a merge key (<<) must name a mapping or a list of mappings",
                    "merge only anchored mappings",
                    source.start_mark.line + 1,
                )
            for key, item in value.items():
                merged.setdefault(key, item)

    def _scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        line = node.start_mark.line + 1
        if node.tag == _TIMESTAMP_TAG:
            # Kubernetes keeps an untagged date as the text written; so does Milkyway.
            value: Any = node.value
        else:
            self._check_tag(node, node.tag in _PLAIN_TAGS)
            try:
                value = self.constructor.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, TypeError, KeyError, OverflowError) as exc:
                raise DocumentUnreadable(
                    f"the value {_preview(node.value)} is not a valid {_short(node.tag)}: {exc}",
                    "write the value so that it matches its tag, or drop the tag",
                    line,
                ) from None
        if node.tag != _STR_TAG and not node.style and path:
            self.source.scalars[path] = Scalar(line, node.value, node.tag)
        return value

    @staticmethod
    def _check_tag(node: yaml.Node, allowed: bool) -> None:
        if allowed:
            return
        raise DocumentUnreadable(
            f"the tag {_short(node.tag)} is not allowed: a manifest holds only strings, "
            "numbers, booleans, null, mappings and lists",
            "remove the tag (quote the value to keep it as text)",
            node.start_mark.line + 1,
        )


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org") else tag


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def decode_manifest(data: bytes) -> str:
    """The text of a manifest file; :class:`DocumentUnreadable` when it is larger than
    :data:`MAX_DOCUMENT_BYTES` or not UTF-8 (naming the line of the first bad byte)."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentUnreadable(
            f"the file is {len(data)} bytes long; the limit is {MAX_DOCUMENT_BYTES} "
            "(what the Kubernetes API server accepts in one request)",
            "split the file or remove the oversized values",
            None,
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DocumentUnreadable(
            f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8 text",
            "save the file as UTF-8",
            line,
        ) from None

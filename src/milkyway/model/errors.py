"""Validation errors users can act on: the field path, the value, what is wrong, the fix."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One problem of a resource, in the spirit of a Kubernetes ``Invalid`` status cause."""

    path: str
    """Dotted field path with list indexes, e.g. ``spec.components[1].regions[0].zones[0].size``."""
    value: Any
    """The offending value as written (``None`` when the field is missing)."""
    message: str
    """What is wrong."""
    fix: str
    """What to do about it."""
    line: int | None = None
    """1-based line in the YAML source, when known."""

    def __str__(self) -> str:
        where = f"{self.path} (line {self.line})" if self.line else self.path
        value = "" if self.value is None else f" = {shown_value(self.value)}"
        return f"{where}{value}: {self.message}; fix: {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "value": self.value,
            "message": self.message,
            "fix": self.fix,
            "line": self.line,
        }


class ValidationFailed(ValueError):
    """A resource was rejected; ``errors`` lists every problem found, not just the first."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__(
            f"{len(self.errors)} problem(s):\n" + "\n".join(f"  {e}" for e in self.errors)
        )


class DocumentUnreadable(ValidationFailed):
    """The text is not a document at all (bad YAML, bad encoding, past a size limit):
    one problem at one line, which a command prints as a single line."""

    def __init__(self, problem: str, fix: str, line: int | None) -> None:
        self.problem = problem
        self.fix = fix
        self.line = line
        super().__init__([FieldError("", None, problem, fix, line)])

    def one_line(self, file: object) -> str:
        """``FILE: line N: problem; fix: ...`` for a command's error output."""
        where = f"{file}: line {self.line}" if self.line else f"{file}"
        return f"{where}: {self.problem}; fix: {self.fix}"


def shown_value(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to about ``limit`` characters, so that a huge value cannot flood
    an error message; a cut string says how long it was."""
    if value is None:
        return ""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = _SHORT_REPR.repr(value)
    return text if len(text) <= 2 * limit else text[: 2 * limit] + "..."


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = 120
_SHORT_REPR.maxother = 120
_SHORT_REPR.maxlist = _SHORT_REPR.maxdict = 8
_SHORT_REPR.maxlevel = 4


def format_path(parts: tuple[str | int, ...] | list[str | int]) -> str:
    """``("spec", "components", 1, "name")`` to ``spec.components[1].name``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out

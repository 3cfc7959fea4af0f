"""Validation errors users can act on: the field path, the value, what is wrong, the fix."""

from __future__ import annotations

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
        value = "" if self.value is None else f" = {self.value!r}"
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


def format_path(parts: tuple[str | int, ...] | list[str | int]) -> str:
    """``("spec", "components", 1, "name")`` to ``spec.components[1].name``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out

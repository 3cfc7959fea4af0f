"""The ``fieldManager`` query parameter's rules: at most 128 bytes, printable only.

A manager name is stored in every managedFields entry it owns, so the real server bounds
it on every write (``CreateOptions``, ``UpdateOptions``, ``PatchOptions``) and answers
422 Invalid naming the options kind.
"""

from __future__ import annotations

from milkyway.sim.apiserver import fielderrors as fe
from milkyway.sim.apiserver.errors import Cause

FIELD_MANAGER_MAX_LENGTH = 128


def field_manager_causes(manager: str) -> list[Cause]:
    """Why ``manager`` cannot name a field manager (empty when it can)."""
    causes: list[Cause] = []
    if len(manager.encode()) > FIELD_MANAGER_MAX_LENGTH:
        causes.append(fe.too_long("fieldManager", FIELD_MANAGER_MAX_LENGTH))
    causes.extend(
        fe.invalid("fieldManager", manager, f"invalid character {_unicode_name(char)}")
        for char in manager
        if not char.isprintable()
    )
    return causes


def _unicode_name(char: str) -> str:
    """``U+000A`` style, as Go's ``%#U`` prints a non-printable rune."""
    return f"U+{ord(char):04X}"

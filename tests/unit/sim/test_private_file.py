"""Credential files are created owner-only and replaced whole."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from milkyway.sim.private_file import write_private


def test_written_owner_only_with_parents_and_replaced(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        target = write_private(tmp_path / "a" / "b" / "token", "one")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    write_private(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["token"]

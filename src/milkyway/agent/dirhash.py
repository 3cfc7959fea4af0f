"""Content hash of a mounted ConfigMap or Secret directory.

The kubelet publishes such a volume as symlinks into a ``..data`` directory that it swaps
atomically, so the visible file names are read through their links and the kubelet's own
``..`` entries are skipped.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def directory_hash(directory: Path, exclude: frozenset[str] = frozenset()) -> str | None:
    """``sha256:…`` of the visible files of ``directory``, or None if it cannot be read."""
    digest = hashlib.sha256()
    try:
        names = sorted(
            entry.name
            for entry in os.scandir(directory)
            if not entry.name.startswith("..") and entry.name not in exclude
        )
        for name in names:
            path = directory / name
            if not path.is_file():
                continue
            digest.update(name.encode() + b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    except OSError:
        return None
    return "sha256:" + digest.hexdigest()

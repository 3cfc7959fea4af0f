"""Content hash of a mounted ConfigMap or Secret directory.

The kubelet publishes such a volume as symlinks into a ``..data`` directory that it swaps
atomically, so the visible file names are read through their links and the kubelet's own
``..`` entries are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

from milkyway.kube.agent_contract import files_hash


def directory_hash(directory: Path, exclude: frozenset[str] = frozenset()) -> str | None:
    """``sha256:…`` of the visible files of ``directory``, or None if it cannot be read."""
    files: dict[str, bytes] = {}
    try:
        for entry in os.scandir(directory):
            if entry.name.startswith("..") or entry.name in exclude:
                continue
            path = directory / entry.name
            if path.is_file():
                files[entry.name] = path.read_bytes()
    except OSError:
        return None
    return files_hash(files)

"""Files only their owner may read: kubeconfigs, token files, TLS keys, the admin endpoint.

Each holds a credential, so it is created with mode 0600 (never world-readable, not even
for a moment) and replaced atomically, so a reader never sees half of it.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, content: str | bytes) -> Path:
    """Write ``content`` to ``path`` (parents created), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)
    return path

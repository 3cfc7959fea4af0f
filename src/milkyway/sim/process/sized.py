"""PersistentVolumes with a real size: each is its own filesystem (a tmpfs of the
volume's capacity), so ``df``/``statvfs`` in a pod report the volume's size and usage,
writes past it fail with ENOSPC, and ``fill-disk`` can fill one for real.

A plain volume directory shares the machine's filesystem: its usage is the machine's,
and filling it would fill the machine. A tmpfs costs memory only for what is written
(a ZooKeeper member's data: a few MB). Mounting needs root, as the process runtime's
sandboxes already do. The mounts end with the runtime (data in them does not outlive a
simulator restart).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

FILL_FILE = ".milkyway-fill"
"""The file ``fill-disk`` writes into a volume; lifting the fault removes it."""
_CHUNK = 1 << 20


class SizedVolumeError(Exception):
    """A sized volume cannot be set up or filled; the message says why."""


def mount_sized(folder: Path, size_bytes: int) -> None:
    """Make ``folder`` a filesystem of ``size_bytes`` (nothing if it already is one)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(folder):
        return
    if os.geteuid() != 0:
        raise SizedVolumeError("volumes with a size limit need root (they are tmpfs mounts)")
    size = max(size_bytes, 1 << 20)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SizedVolumeError(f"cannot mount a {size}-byte volume at {folder}: {done.stderr}")


def unmount_sized(folder: Path) -> None:
    if os.path.ismount(folder):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def fill(folder: Path, percent: float) -> int:
    """Write a file into ``folder`` until its filesystem is ``percent`` % used (as
    ``statvfs`` counts it); the bytes written. Refuses a folder that is not its own
    filesystem: filling it would fill the machine's disk."""
    if not 0 < percent <= 100:
        raise SizedVolumeError(f"percent {percent} must be above 0 and at most 100")
    if not os.path.ismount(folder):
        raise SizedVolumeError(
            f"{folder} has no size limit of its own (it shares the machine's disk); "
            "start the simulator with sized volumes (milkyway sim up --sized-volumes)"
        )
    stats = os.statvfs(folder)
    size = stats.f_blocks * stats.f_frsize
    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    wanted = max(0, int(size * percent / 100) - used)
    written = 0
    block = b"\0" * _CHUNK
    with (folder / FILL_FILE).open("ab") as handle:
        while written < wanted:
            piece = block[: min(_CHUNK, wanted - written)]
            try:
                handle.write(piece)
                handle.flush()
            except OSError:
                break
            written += len(piece)
    return written


def drain(folder: Path) -> None:
    """Remove what :func:`fill` wrote."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        (folder / FILL_FILE).unlink()

"""One demo per directory: the demo writes its kubeconfig and operator log next to each
other, so a second demo in the same directory would overwrite the first one's kubeconfig
and leave it unreachable. A pid file claims the directory for the demo's lifetime."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

PID_FILE = "demo.pid"


class DemoRunning(Exception):
    """Another demo, still alive, uses the directory; the message names it."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        # A recycled pid of an unrelated process does not hold the directory.
        with contextlib.suppress(OSError):
            return b"milkyway" in cmdline.read_bytes()
    return True


def _holder(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def claim_directory(directory: Path) -> Iterator[Path]:
    """Hold ``directory`` for this process's demo, or raise :class:`DemoRunning`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / PID_FILE
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid = _holder(path)
            if pid is not None and pid != os.getpid() and _alive(pid):
                raise DemoRunning(
                    f"a demo is already running in {directory} (pid {pid}); a second one "
                    "would overwrite its kubeconfig. Stop it (Ctrl-C in its terminal, or "
                    f"kill {pid}) or give this one its own directory: "
                    "milkyway demo --kubeconfig /tmp/demo2/kubeconfig"
                ) from None
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # left by a demo that died without cleaning up
            continue
        with os.fdopen(fd, "w") as out:
            out.write(f"{os.getpid()}\n")
        break
    else:
        raise DemoRunning(f"{path} keeps appearing: another demo is starting in {directory}")
    try:
        yield path
    finally:
        if _holder(path) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

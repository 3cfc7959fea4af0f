"""Volume usage and health, and the alert state machine that de-duplicates alerts.

An alert is raised when a volume crosses a threshold and cleared once when it falls back
below the warning threshold; while the level holds nothing new is reported, so a disk at
91 % for a day is one alert, not one per check period. A volume that cannot be read, is
mounted read-only or is missing is ``failed``: worse than critical, since no amount of
cleaning up makes it usable again.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass
from typing import Literal

from milkyway.model.agent_spec import AgentVolume

Level = Literal["ok", "warning", "critical", "failed"]
LEVEL_ORDER: dict[Level, int] = {"ok": 0, "warning": 1, "critical": 2, "failed": 3}


@dataclass(frozen=True)
class VolumeReading:
    volume: str
    path: str
    level: Level
    used_bytes: int
    size_bytes: int
    message: str

    @property
    def used_percent(self) -> float:
        return 100.0 * self.used_bytes / self.size_bytes if self.size_bytes else 0.0


def read_volume(volume: AgentVolume) -> VolumeReading:
    """Usage and health of one volume, never raising."""
    path = volume.path
    try:
        stats = os.statvfs(path)
        os.listdir(path)
    except FileNotFoundError:
        return VolumeReading(volume.name, path, "failed", 0, 0, f"{path} is missing (not mounted)")
    except OSError as error:
        reason = "I/O error" if error.errno == errno.EIO else error.strerror or str(error)
        return VolumeReading(volume.name, path, "failed", 0, 0, f"{path}: {reason}")
    size = stats.f_blocks * stats.f_frsize
    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    if stats.f_flag & os.ST_RDONLY:
        return VolumeReading(
            volume.name, path, "failed", used, size, f"{path} is mounted read-only"
        )
    percent = 100.0 * used / size if size else 0.0
    thresholds = volume.thresholds
    level: Level = "ok"
    if percent >= thresholds.critical_percent:
        level = "critical"
    elif percent >= thresholds.warning_percent:
        level = "warning"
    message = f"{path} {percent:.1f} % used ({used} of {size} bytes)"
    return VolumeReading(volume.name, path, level, used, size, message)


@dataclass
class DiskAlert:
    """One alert transition: raised at a level, or cleared."""

    volume: str
    level: Level
    previous: Level
    message: str
    at: float


class DiskAlertState:
    """Turns readings into alert transitions, at most one per change of level.

    Going up raises at once; coming down from warning or worse clears only below the
    warning threshold (a volume hovering around 90 % does not flap between critical and
    warning), and a level between is reported as a new, lower alert."""

    def __init__(self) -> None:
        self.levels: dict[str, Level] = {}
        self.since: dict[str, float] = {}

    def update(self, reading: VolumeReading, now: float | None = None) -> DiskAlert | None:
        moment = time.time() if now is None else now
        previous = self.levels.get(reading.volume, "ok")
        if reading.level == previous:
            return None
        self.levels[reading.volume] = reading.level
        self.since[reading.volume] = moment
        return DiskAlert(reading.volume, reading.level, previous, reading.message, moment)

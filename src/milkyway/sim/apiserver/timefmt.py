"""Ages as kubectl prints them: ``5s``, ``3m12s``, ``2d4h``, ``3y45d``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (``2026-01-02T03:04:05Z``), or ``None`` if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def human_duration(delta: timedelta) -> str:
    """The coarse duration of kubectl's AGE column, finer for recent times."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def since(value: Any, now: datetime) -> str:
    """``human_duration`` since the timestamp ``value``; ``<unknown>`` when there is none."""
    moment = parse_time(value)
    return human_duration(now - moment) if moment else "<unknown>"


def age(obj: dict, now: datetime) -> str:
    metadata = obj.get("metadata")
    stamp = metadata.get("creationTimestamp") if isinstance(metadata, dict) else None
    return since(stamp, now)

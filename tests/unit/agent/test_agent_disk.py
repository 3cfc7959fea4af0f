"""Volume readings and alert de-duplication."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from milkyway.agent.disk import DiskAlertState, VolumeReading, read_volume
from milkyway.model.agent_spec import AgentVolume, DiskThresholds

from .agent_fixtures import running_agent


def _reading(level: str) -> VolumeReading:
    return VolumeReading("data", "/data", level, 0, 100, f"at {level}")  # type: ignore[arg-type]


def test_an_alert_is_raised_once_per_level_and_cleared_once() -> None:
    state = DiskAlertState()
    levels = ["ok", "warning", "warning", "critical", "critical", "critical", "ok", "ok"]
    transitions = [state.update(_reading(level), now=i) for i, level in enumerate(levels)]
    raised = [(t.previous, t.level) for t in transitions if t is not None]
    assert raised == [("ok", "warning"), ("warning", "critical"), ("critical", "ok")]


def test_readings_of_a_real_directory(tmp_path: Path) -> None:
    usage = os.statvfs(tmp_path)
    used_percent = 100 * (usage.f_blocks - usage.f_bfree) / usage.f_blocks
    below = AgentVolume(
        name="data",
        path=str(tmp_path),
        thresholds=DiskThresholds(
            warningPercent=min(99.9, used_percent + 5), criticalPercent=99.95
        ),
    )
    assert read_volume(below).level == "ok"
    warn = AgentVolume(
        name="data",
        path=str(tmp_path),
        thresholds=DiskThresholds(
            warningPercent=max(0.01, used_percent - 1), criticalPercent=99.95
        ),
    )
    assert read_volume(warn).level == "warning"
    critical = AgentVolume(
        name="data",
        path=str(tmp_path),
        thresholds=DiskThresholds(
            warningPercent=0.001, criticalPercent=max(0.01, used_percent - 1)
        ),
    )
    reading = read_volume(critical)
    assert reading.level == "critical" and reading.size_bytes > 0
    missing = read_volume(AgentVolume(name="data", path=str(tmp_path / "gone")))
    assert missing.level == "failed" and "missing" in missing.message


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="warning must come first"):
        DiskThresholds(warningPercent=95, criticalPercent=90)


async def test_status_reports_volumes_and_health(tmp_path: Path) -> None:
    spec = {
        "volumes": [
            {
                "name": "data",
                "path": str(tmp_path / "data"),
                "thresholds": {"warningPercent": 0.001, "criticalPercent": 100},
            }
        ]
    }
    (tmp_path / "data").mkdir()
    async with running_agent(tmp_path, spec) as agent:
        first = agent.service.read_volumes()
        again = agent.service.read_volumes()
        status = (await agent.client.get("/v1/status")).json()
        (tmp_path / "data").rmdir()
        failed = agent.service.read_volumes()
        after = (await agent.client.get("/v1/status")).json()
    assert [a.level for a in first] == ["warning"] and again == []
    assert status["health"] == "Degraded" and status["volumes"][0]["level"] == "warning"
    assert [a.level for a in failed] == ["failed"]
    assert after["health"] == "Unhealthy"

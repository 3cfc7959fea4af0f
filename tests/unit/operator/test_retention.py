"""Which finished health and notification runs are removed, and which are kept."""

from __future__ import annotations

from typing import Any

from milkyway.operator.retention import old_deliveries, old_health_runs


def health_run(app: str, kind: str, fired: int, phase: str = "Succeeded") -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{app}-{kind}-{fired}",
            "labels": {
                "milkyway.ebay.com/health-of": app,
                "milkyway.ebay.com/schedule": kind,
                "milkyway.ebay.com/fired-at": str(fired),
            },
        },
        "status": {"phase": phase},
    }


def test_the_newest_health_runs_of_each_application_and_kind_are_kept() -> None:
    runs = [health_run("a", "health", t) for t in (100, 400, 200, 300, 500)]
    runs += [health_run("a", "heartbeat", 100), health_run("b", "health", 100)]
    runs.append(health_run("a", "health", 50, phase="Running"))
    assert old_health_runs(runs, keep=3) == ["a-health-100", "a-health-200"]


def test_deliveries_are_kept_for_a_day_after_they_finished_and_never_while_unfinished() -> None:
    def delivery(name: str, phase: str, finished: float | None) -> dict[str, Any]:
        return {"metadata": {"name": name}, "status": {"phase": phase, "finishedAt": finished}}

    now = 100_000.0
    runs = [
        delivery("old", "Succeeded", now - 90_000),
        delivery("failed-old", "Failed", now - 90_000),
        delivery("recent", "Succeeded", now - 60),
        delivery("retrying", "Running", None),
    ]
    assert old_deliveries(runs, now) == ["failed-old", "old"]

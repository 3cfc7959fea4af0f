"""The pure cores of the Job and CronJob controllers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from milkyway.sim.controllers.actions import Create, Delete, Requeue
from milkyway.sim.controllers.cronjob import CronJobView, reconcile_cronjob
from milkyway.sim.controllers.job import JobView, reconcile_job

NOW = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)


def cronjob(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "report",
            "namespace": "default",
            "uid": "cj-uid",
            "creationTimestamp": "2026-02-28T23:00:00Z",
        },
        "spec": {
            "schedule": "0 9 * * *",
            "concurrencyPolicy": "Allow",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never"}}}},
            **spec,
        },
    }


def test_schedule_runs_in_the_cronjobs_time_zone() -> None:
    actions = reconcile_cronjob(CronJobView(cronjob(timeZone="Asia/Tokyo"), []), NOW)
    (create,) = [a for a in actions if isinstance(a, Create)]
    nine_in_tokyo = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    assert create.obj["metadata"]["name"] == f"report-{int(nine_in_tokyo.timestamp()) // 60}"
    assert create.obj["metadata"]["ownerReferences"][0]["uid"] == "cj-uid"
    (requeue,) = [a for a in actions if isinstance(a, Requeue)]
    assert requeue.after == timedelta(days=1).total_seconds() - 30 * 60 + 0.01
    in_utc = reconcile_cronjob(CronJobView(cronjob(), []), NOW)
    assert not [a for a in in_utc if isinstance(a, Create)], "09:00 UTC is still to come"


def test_forbid_skips_while_a_job_runs_and_replace_deletes_it() -> None:
    running = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "report-old", "namespace": "default", "uid": "j1"},
        "status": {"active": 1},
    }
    forbid = cronjob(timeZone="Asia/Tokyo", concurrencyPolicy="Forbid")
    assert not [
        a for a in reconcile_cronjob(CronJobView(forbid, [running]), NOW) if isinstance(a, Create)
    ]
    replace = cronjob(timeZone="Asia/Tokyo", concurrencyPolicy="Replace")
    actions = reconcile_cronjob(CronJobView(replace, [running]), NOW)
    assert [a.name for a in actions if isinstance(a, Delete)] == ["report-old"]
    assert [a for a in actions if isinstance(a, Create)]


def test_starting_deadline_skips_a_late_run() -> None:
    late = cronjob(timeZone="Asia/Tokyo", startingDeadlineSeconds=60)
    assert not [a for a in reconcile_cronjob(CronJobView(late, []), NOW) if isinstance(a, Create)]


def job(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "default", "uid": "job-uid", "generation": 1},
        "spec": {"completions": 1, "parallelism": 1, "backoffLimit": 6, **spec},
        "status": {"startTime": "2026-03-01T00:00:00Z", "failed": 1},
    }


def failed_pod(finished: datetime) -> dict[str, Any]:
    return {
        "metadata": {"name": "j-1", "namespace": "default", "uid": "p1"},
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": 1,
                            "finishedAt": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        }
                    },
                }
            ],
        },
    }


def test_a_failed_pod_is_replaced_after_the_backoff() -> None:
    pod = failed_pod(NOW - timedelta(seconds=4))
    early = reconcile_job(JobView(job(), [pod], backoff=10.0), NOW)
    assert not [a for a in early if isinstance(a, Create)]
    (wait,) = [a for a in early if isinstance(a, Requeue)]
    assert wait.after == 6.0
    later = reconcile_job(JobView(job(), [pod], backoff=10.0), NOW + timedelta(seconds=7))
    assert [a for a in later if isinstance(a, Create)]

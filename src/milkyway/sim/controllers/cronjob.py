"""The CronJob controller's pure core: create a Job at each scheduled time.

As kube-controller-manager's cronjob controller: the most recent missed schedule time (in
``spec.timeZone``, UTC by default) starts a Job named ``<cronjob>-<minutes since the
epoch>``, unless it is older than ``startingDeadlineSeconds``; ``concurrencyPolicy``
``Forbid`` skips a run while a Job is active and ``Replace`` deletes the active ones first;
finished Jobs beyond the ``successfulJobsHistoryLimit``/``failedJobsHistoryLimit`` are
deleted, oldest first; ``status`` lists the active Jobs and the last schedule and success.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from milkyway.sim.controllers.actions import Action, Create, Delete, Event, Patch, Requeue
from milkyway.sim.controllers.job import JOBS, condition, finished_at
from milkyway.sim.controllers.objects import (
    Obj,
    controller_ref,
    meta,
    name_of,
    namespace_of,
    now_rfc3339,
    object_ref,
    parse_time,
    uid_of,
)

SOURCE = "cronjob-controller"
CRONJOBS = ("batch", "v1", "cronjobs")
SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
_MAX_MISSED = 100


@dataclass(frozen=True)
class CronJobView:
    cronjob: Obj
    jobs: Sequence[Obj]
    """Jobs controlled by the CronJob."""


def _zone(spec: Obj) -> Any:
    name = spec.get("timeZone")
    if not name:
        return UTC
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def job_name(cronjob: Obj, scheduled: datetime) -> str:
    return f"{name_of(cronjob)}-{int(scheduled.timestamp()) // 60}"


def new_job(cronjob: Obj, scheduled: datetime) -> Obj:
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_AT] = scheduled.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    job_meta: dict[str, Any] = {
        "name": job_name(cronjob, scheduled),
        "namespace": namespace_of(cronjob),
        "annotations": annotations,
        "ownerReferences": [controller_ref(cronjob)],
    }
    if tmeta.get("labels"):
        job_meta["labels"] = dict(tmeta["labels"])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def _last_missed(cronjob: Obj, zone: Any, now: datetime) -> tuple[datetime | None, datetime]:
    """(the latest schedule time not yet run, or None; the next schedule time)."""
    spec = cronjob.get("spec") or {}
    status = cronjob.get("status") or {}
    since_raw = status.get("lastScheduleTime") or meta(cronjob).get("creationTimestamp")
    since = parse_time(since_raw) if since_raw else now
    local_now = now.astimezone(zone)
    schedule = croniter(str(spec.get("schedule", "")), since.astimezone(zone))
    missed: datetime | None = None
    for _ in range(_MAX_MISSED):
        moment = schedule.get_next(datetime)
        if moment > local_now:
            return missed, moment
        missed = moment
    # Too many missed runs (the real controller logs this too): run the latest one.
    latest = croniter(str(spec.get("schedule", "")), local_now).get_prev(datetime)
    following = croniter(str(spec.get("schedule", "")), local_now).get_next(datetime)
    return latest, following


def reconcile_cronjob(view: CronJobView, now: datetime) -> list[Action]:
    cronjob = view.cronjob
    if meta(cronjob).get("deletionTimestamp"):
        return []
    spec = cronjob.get("spec") or {}
    status = dict(cronjob.get("status") or {})
    ns = namespace_of(cronjob)
    ref = object_ref(cronjob)
    actions: list[Action] = []
    active = [j for j in view.jobs if finished_at(j) is None]
    finished = [j for j in view.jobs if finished_at(j) is not None]
    successes = [
        parse_time(j["status"]["completionTime"])
        for j in finished
        if condition(j, "Complete") and (j.get("status") or {}).get("completionTime")
    ]
    new_status: Obj = {}
    if status.get("lastScheduleTime"):
        new_status["lastScheduleTime"] = status["lastScheduleTime"]
    last_success = status.get("lastSuccessfulTime")
    if successes:
        latest = now_rfc3339(max(successes))
        last_success = max(latest, last_success or "")
    if last_success:
        new_status["lastSuccessfulTime"] = last_success
    actions.extend(_trim_history(spec, finished))
    zone = _zone(spec)
    if zone is None:
        actions.append(
            Event(ref, "Warning", "UnknownTimeZone", f"invalid timeZone: {spec.get('timeZone')}")
        )
    elif not spec.get("suspend"):
        missed, following = _last_missed(cronjob, zone, now)
        deadline = spec.get("startingDeadlineSeconds")
        if missed is not None:
            too_late = deadline is not None and (now - missed) > timedelta(seconds=int(deadline))
            policy = spec.get("concurrencyPolicy", "Allow")
            if too_late:
                actions.append(
                    Event(
                        ref,
                        "Warning",
                        "MissSchedule",
                        f"Missed scheduled time to start a job: {now_rfc3339(missed)}",
                        SOURCE,
                    )
                )
            elif policy == "Forbid" and active:
                actions.append(Requeue(1.0))
                missed = None
            else:
                if policy == "Replace":
                    for job in active:
                        actions.append(Delete(JOBS, ns, name_of(job), uid=uid_of(job)))
                        actions.append(
                            Event(
                                ref,
                                "Normal",
                                "SuccessfulDelete",
                                f"Deleted job {name_of(job)}",
                                SOURCE,
                            )
                        )
                    active = []
                job = new_job(cronjob, missed)
                actions.append(Create(JOBS, ns, job))
                actions.append(
                    Event(
                        ref,
                        "Normal",
                        "SuccessfulCreate",
                        f"Created job {job['metadata']['name']}",
                        SOURCE,
                    )
                )
            if missed is not None:
                new_status["lastScheduleTime"] = now_rfc3339(missed.astimezone(UTC))
        wait = (following.astimezone(UTC) - now).total_seconds()
        actions.append(Requeue(max(wait, 0.0) + 0.01))
    known = {r.get("uid"): r for r in status.get("active") or []}
    refs = [known.get(uid_of(j)) or _job_ref(j) for j in active]
    if refs:
        new_status["active"] = refs
    if new_status != status:
        patch: Obj = {key: None for key in status if key not in new_status}
        patch.update(new_status)
        actions.append(Patch(CRONJOBS, ns, name_of(cronjob), {"status": patch}, "status"))
    return actions


def _job_ref(job: Obj) -> Obj:
    md = job["metadata"]
    out = {
        "kind": "Job",
        "namespace": md.get("namespace", ""),
        "name": md["name"],
        "apiVersion": "batch/v1",
    }
    if md.get("uid"):
        out["uid"] = md["uid"]
    if md.get("resourceVersion"):
        out["resourceVersion"] = md["resourceVersion"]
    return out


def _trim_history(spec: Obj, finished: Sequence[Obj]) -> list[Action]:
    actions: list[Action] = []
    for type_, key, default in (
        ("Complete", "successfulJobsHistoryLimit", 3),
        ("Failed", "failedJobsHistoryLimit", 1),
    ):
        limit = int(spec.get(key, default))
        done = sorted(
            (j for j in finished if condition(j, type_)),
            key=lambda j: meta(j).get("creationTimestamp", ""),
        )
        for job in done[: max(0, len(done) - limit)]:
            actions.append(Delete(JOBS, namespace_of(job), name_of(job), uid=uid_of(job)))
    return actions

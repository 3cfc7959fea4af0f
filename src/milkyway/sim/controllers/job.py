"""The Job controller's pure core: run pods until ``completions`` succeed, or fail the Job.

As kube-controller-manager's job controller: at most ``parallelism`` pods run at once (never
more than the completions still missing); a failed pod is replaced after an exponential
back-off (base ``backoff`` seconds, doubled per failure, capped at six minutes); more
failures than ``backoffLimit`` (or running longer than ``activeDeadlineSeconds``) fail the
Job and delete its running pods; a finished Job has a ``Complete`` or ``Failed`` condition
and is deleted ``ttlSecondsAfterFinished`` seconds after it finished. A suspended Job
runs no pods.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from milkyway.sim.controllers.actions import PODS, Action, Create, Delete, Event, Patch, Requeue
from milkyway.sim.controllers.objects import (
    Obj,
    controller_ref,
    is_pod_ready,
    is_terminating,
    name_of,
    namespace_of,
    now_rfc3339,
    object_ref,
    parse_time,
    pod_phase,
    uid_of,
)

SOURCE = "job-controller"
JOBS = ("batch", "v1", "jobs")
MAX_BACKOFF = timedelta(minutes=6)
_REACHED = "Reached expected number of succeeded pods"


@dataclass(frozen=True)
class JobView:
    job: Obj
    pods: Sequence[Obj]
    """Pods controlled by the Job (any state)."""
    backoff: float = 10.0
    """Seconds before a failed pod is replaced (doubled per further failure)."""


def _spec(job: Obj) -> Obj:
    return job.get("spec") or {}


def condition(job: Obj, type_: str) -> Obj | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return cond
    return None


def finished_at(job: Obj) -> datetime | None:
    """When the Job finished (its Complete or Failed condition), or None while it runs."""
    for type_ in ("Complete", "Failed"):
        cond = condition(job, type_)
        if cond is not None:
            return parse_time(cond.get("lastTransitionTime") or now_rfc3339())
    return None


def new_pod(job: Obj) -> Obj:
    template = _spec(job).get("template") or {}
    tmeta = template.get("metadata") or {}
    pod_meta: dict[str, Any] = {
        "generateName": f"{name_of(job)}-",
        "namespace": namespace_of(job),
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [controller_ref(job)],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def _is_active(pod: Obj) -> bool:
    return pod_phase(pod) not in ("Succeeded", "Failed") and not is_terminating(pod)


def _restarts(pod: Obj) -> int:
    return sum(
        int(c.get("restartCount") or 0)
        for c in (pod.get("status") or {}).get("containerStatuses") or []
    )


def _last_failure(pods: Sequence[Obj]) -> datetime | None:
    latest: datetime | None = None
    for pod in pods:
        for c in (pod.get("status") or {}).get("containerStatuses") or []:
            for state in (c.get("state") or {}, c.get("lastState") or {}):
                done = state.get("terminated") or {}
                if done.get("exitCode") and done.get("finishedAt"):
                    moment = parse_time(done["finishedAt"])
                    latest = moment if latest is None or moment > latest else latest
    return latest


def _condition(type_: str, reason: str, message: str, stamp: str) -> Obj:
    return {
        "type": type_,
        "status": "True",
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def reconcile_job(view: JobView, now: datetime) -> list[Action]:
    job = view.job
    if is_terminating(job):
        return []
    done = finished_at(job)
    if done is not None:
        return _after_finish(job, view.pods, done, now)
    spec = _spec(job)
    ns = namespace_of(job)
    ref = object_ref(job)
    old = job.get("status") or {}
    stamp = now_rfc3339(now)
    active = [p for p in view.pods if _is_active(p)]
    succeeded = max(
        int(old.get("succeeded") or 0), sum(1 for p in view.pods if pod_phase(p) == "Succeeded")
    )
    failed_pods = [p for p in view.pods if pod_phase(p) == "Failed"]
    failed = max(int(old.get("failed") or 0), len(failed_pods))
    restarts = sum(_restarts(p) for p in active)
    status: Obj = {
        "startTime": old.get("startTime") or stamp,
        "active": len(active),
        "ready": sum(1 for p in active if is_pod_ready(p)),
        "succeeded": succeeded,
        "failed": failed,
        "terminating": sum(1 for p in view.pods if is_terminating(p)),
        "uncountedTerminatedPods": {},
    }
    conditions = list(old.get("conditions") or [])
    actions: list[Action] = []
    completions = spec.get("completions")
    backoff_limit = int(spec.get("backoffLimit", 6))
    deadline = spec.get("activeDeadlineSeconds")
    started = parse_time(status["startTime"])
    failure: tuple[str, str] | None = None
    if failed + restarts > backoff_limit:
        failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    elif deadline is not None and (now - started).total_seconds() >= int(deadline):
        failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
    complete = (
        succeeded >= int(completions) if completions is not None else succeeded > 0 and not active
    )
    if failure is not None:
        for pod in active:
            actions.append(Delete(PODS, ns, name_of(pod), uid=uid_of(pod)))
        status["active"] = 0
        status["ready"] = 0
        conditions.append(_condition("FailureTarget", failure[0], failure[1], stamp))
        conditions.append(_condition("Failed", failure[0], failure[1], stamp))
        actions.append(Event(ref, "Warning", failure[0], failure[1], SOURCE))
    elif complete:
        for pod in active:
            actions.append(Delete(PODS, ns, name_of(pod), uid=uid_of(pod)))
        status["active"] = 0
        status["ready"] = 0
        status["completionTime"] = stamp
        for type_ in ("SuccessCriteriaMet", "Complete"):
            conditions.append(_condition(type_, "CompletionsReached", _REACHED, stamp))
        actions.append(Event(ref, "Normal", "Completed", "Job completed", SOURCE))
    elif spec.get("suspend"):
        for pod in active:
            actions.append(Delete(PODS, ns, name_of(pod), uid=uid_of(pod)))
        status["active"] = 0
        status.pop("startTime", None)
    else:
        parallelism = int(spec.get("parallelism", 1))
        wanted = parallelism
        if completions is not None:
            wanted = min(parallelism, int(completions) - succeeded)
        elif succeeded > 0:
            wanted = 0
        missing = wanted - len(active)
        if missing > 0:
            wait = _backoff_left(view, failed + restarts, failed_pods, now)
            if wait > 0:
                actions.append(Requeue(wait))
            else:
                for _ in range(missing):
                    actions.append(Create(PODS, ns, new_pod(job)))
                actions.append(
                    Event(ref, "Normal", "SuccessfulCreate", f"Created {missing} pod(s)", SOURCE)
                )
        elif missing < 0:
            for pod in active[:-missing]:
                actions.append(Delete(PODS, ns, name_of(pod), uid=uid_of(pod)))
        if deadline is not None:
            left = int(deadline) - (now - started).total_seconds()
            actions.append(Requeue(max(left, 0.0) + 0.01))
    status["conditions"] = conditions
    if not conditions:
        del status["conditions"]
    if status != old:
        actions.insert(0, Patch(JOBS, ns, name_of(job), {"status": status}, "status"))
    if failure is not None or complete:
        ttl = spec.get("ttlSecondsAfterFinished")
        if ttl is not None:
            actions.append(Requeue(float(ttl) + 0.01))
    return actions


def _backoff_left(view: JobView, failures: int, failed_pods: Sequence[Obj], now: datetime) -> float:
    """Seconds until the next pod may be created after ``failures`` failures."""
    if failures <= 0:
        return 0.0
    last = _last_failure([*failed_pods, *view.pods])
    if last is None:
        return 0.0
    delay = timedelta(seconds=view.backoff * 2 ** (failures - 1))
    delay = min(delay, MAX_BACKOFF)
    return max(0.0, (last + delay - now).total_seconds())


def _after_finish(job: Obj, pods: Sequence[Obj], done: datetime, now: datetime) -> list[Action]:
    """A finished Job keeps no running pods, and goes when its TTL has passed."""
    ns = namespace_of(job)
    actions: list[Action] = [
        Delete(PODS, ns, name_of(p), uid=uid_of(p)) for p in pods if _is_active(p)
    ]
    ttl = _spec(job).get("ttlSecondsAfterFinished")
    if ttl is None:
        return actions
    left = (done + timedelta(seconds=int(ttl)) - now).total_seconds()
    if left > 0:
        actions.append(Requeue(left + 0.01))
    else:
        actions.append(Delete(JOBS, ns, name_of(job), uid=uid_of(job)))
    return actions

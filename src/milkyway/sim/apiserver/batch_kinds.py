"""Defaulting and validation of Jobs, CronJobs and ReplicationControllers.

Controllers read these defaults back (a Job's ``completions``, ``parallelism`` and
``backoffLimit``, the selector the server generates from the Job's uid), so stored objects
carry them exactly where a real API server puts them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from croniter import croniter

from milkyway.sim.apiserver import fielderrors as fe
from milkyway.sim.apiserver.errors import Cause
from milkyway.sim.apiserver.selectors import label_selector_matches

Obj = dict[str, Any]
PodSpecDefaults = Callable[[Obj], None]

CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
_LEGACY_CONTROLLER_UID = "controller-uid"
_LEGACY_JOB_NAME = "job-name"
_JOB_RESTART_POLICIES = ("OnFailure", "Never")
_CONCURRENCY = ("Allow", "Forbid", "Replace")


def _object(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def default_job(obj: Obj, pod_spec: PodSpecDefaults) -> None:
    """Job defaults; a Job without ``manualSelector`` gets the selector generated from its
    uid, and its template the labels that selector matches."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if spec.get("podFailurePolicy") is None:
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    md = _object(obj.get("metadata"))
    uid, name = md.get("uid"), md.get("name")
    template = spec.get("template")
    if isinstance(template, dict):
        if isinstance(template.get("spec"), dict):
            pod_spec(template["spec"])
        if uid and name and not spec.get("manualSelector"):
            labels = template.setdefault("metadata", {}).setdefault("labels", {})
            if isinstance(labels, dict):
                labels.setdefault(CONTROLLER_UID, uid)
                labels.setdefault(JOB_NAME, name)
                labels.setdefault(_LEGACY_CONTROLLER_UID, uid)
                labels.setdefault(_LEGACY_JOB_NAME, name)
            spec.setdefault("selector", {"matchLabels": {CONTROLLER_UID: uid}})


def default_cronjob(obj: Obj, pod_spec: PodSpecDefaults) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_spec = _object(_object(spec.get("jobTemplate")).get("spec"))
    pod = _object(job_spec.get("template")).get("spec")
    if isinstance(pod, dict):
        pod_spec(pod)


def default_replicationcontroller(obj: Obj, pod_spec: PodSpecDefaults) -> None:
    """An RC without a selector selects its template's labels, and takes them as its own."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    template = spec.get("template")
    if not isinstance(template, dict):
        return
    if isinstance(template.get("spec"), dict):
        pod_spec(template["spec"])
    labels = _object(template.get("metadata")).get("labels")
    if isinstance(labels, dict) and labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        md = obj["metadata"]
        if not md.get("labels"):
            md["labels"] = dict(labels)


def _restart_policy(pod_spec: Obj, field: str) -> list[Cause]:
    policy = pod_spec.get("restartPolicy")
    if policy in _JOB_RESTART_POLICIES:
        return []
    return [fe.not_supported(field, policy or "", _JOB_RESTART_POLICIES)]


def _non_negative(spec: Obj, key: str, prefix: str) -> list[Cause]:
    value = spec.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [fe.invalid(f"{prefix}.{key}", value, "must be greater than or equal to 0")]
    return []


def _job_spec(spec: Obj, prefix: str) -> list[Cause]:
    causes: list[Cause] = []
    for key in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        causes.extend(_non_negative(spec, key, prefix))
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not isinstance(deadline, bool) and deadline <= 0:
        causes.append(
            fe.invalid(f"{prefix}.activeDeadlineSeconds", deadline, "must be greater than 0")
        )
    template = _object(spec.get("template"))
    if "template" not in spec:
        causes.append(fe.required(f"{prefix}.template"))
    else:
        causes.extend(
            _restart_policy(_object(template.get("spec")), f"{prefix}.template.spec.restartPolicy")
        )
    return causes


def check_job(obj: Obj) -> list[Cause]:
    spec = _object(obj.get("spec"))
    causes = _job_spec(spec, "spec")
    selector = spec.get("selector")
    labels = _object(_object(_object(spec.get("template")).get("metadata")).get("labels"))
    if isinstance(selector, dict) and not label_selector_matches(selector, labels):
        causes.append(
            Cause(
                fe.INVALID,
                "Invalid value: map[string]string(...): `selector` does not match template "
                "`labels`",
                "spec.template.metadata.labels",
            )
        )
    return causes


def check_cronjob(obj: Obj) -> list[Cause]:
    spec = _object(obj.get("spec"))
    causes: list[Cause] = []
    schedule = spec.get("schedule")
    if not schedule:
        causes.append(fe.required("spec.schedule"))
    elif isinstance(schedule, str) and schedule.strip().startswith(("TZ=", "CRON_TZ=")):
        causes.append(
            fe.invalid(
                "spec.schedule",
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            )
        )
    elif not isinstance(schedule, str) or not croniter.is_valid(schedule):
        causes.append(fe.invalid("spec.schedule", schedule, "unparseable schedule"))
    policy = spec.get("concurrencyPolicy")
    if policy not in _CONCURRENCY:
        causes.append(fe.not_supported("spec.concurrencyPolicy", policy or "", _CONCURRENCY))
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        causes.extend(_non_negative(spec, key, "spec"))
    job_template = _object(spec.get("jobTemplate"))
    if "jobTemplate" not in spec:
        causes.append(fe.required("spec.jobTemplate"))
    else:
        causes.extend(_job_spec(_object(job_template.get("spec")), "spec.jobTemplate.spec"))
    return causes


def check_replicationcontroller(obj: Obj) -> list[Cause]:
    spec = _object(obj.get("spec"))
    causes = _non_negative(spec, "replicas", "spec")
    selector = _object(spec.get("selector"))
    labels = _object(_object(_object(spec.get("template")).get("metadata")).get("labels"))
    if not selector:
        causes.append(fe.required("spec.selector"))
    elif any(labels.get(k) != v for k, v in selector.items()):
        causes.append(
            Cause(
                fe.INVALID,
                "Invalid value: map[string]string(...): `selector` does not match template "
                "`labels`",
                "spec.template.metadata.labels",
            )
        )
    return causes

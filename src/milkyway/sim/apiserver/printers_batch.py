"""``kubectl get`` columns of Jobs, CronJobs, ReplicationControllers, Ingresses and
APIServices, as the real server's table printers render them."""

from __future__ import annotations

from datetime import datetime

from milkyway.sim.apiserver.json_values import as_array, as_object
from milkyway.sim.apiserver.printers_builtin import (
    NONE,
    Column,
    _age_column,
    _col,
    _int,
    _replicas,
    _spec,
    _status,
    _status_int,
    _wide_workload,
    name_column,
)
from milkyway.sim.apiserver.timefmt import human_duration, parse_time, since


def _true(obj: dict, kind: str) -> bool:
    return any(
        as_object(c).get("type") == kind and as_object(c).get("status") == "True"
        for c in as_array(_status(obj).get("conditions"))
    )


def _job_status(obj: dict, _now: datetime) -> str:
    if _true(obj, "Failed"):
        return "Failed"
    if _true(obj, "Complete"):
        return "Complete"
    if _true(obj, "Suspended"):
        return "Suspended"
    if _true(obj, "FailureTarget"):
        return "FailureTarget"
    if _true(obj, "SuccessCriteriaMet"):
        return "SuccessCriteriaMet"
    if _int(_status(obj).get("terminating")):
        return "Terminating"
    return "Running"


def _job_completions(obj: dict, _now: datetime) -> str:
    completions = _spec(obj).get("completions")
    succeeded = _int(_status(obj).get("succeeded"))
    if isinstance(completions, int):
        return f"{succeeded}/{completions}"
    parallelism = _int(_spec(obj).get("parallelism"))
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _job_duration(obj: dict, now: datetime) -> str:
    start = parse_time(_status(obj).get("startTime"))
    if start is None:
        return ""
    end = parse_time(_status(obj).get("completionTime")) or now
    return human_duration(end - start)


def _job_template_wide(obj: dict) -> dict:
    return {"spec": as_object(as_object(_spec(obj).get("jobTemplate")).get("spec"))}


def _job_columns() -> list[Column]:
    return [
        name_column(),
        _col("Status", _job_status, desc="Status of the job."),
        _col("Completions", _job_completions, desc="The completion status of the job."),
        _col("Duration", _job_duration, desc="Time required to complete the job."),
        _age_column(),
        *_wide_workload(),
    ]


def _cron_wide() -> list[Column]:
    containers, images, selector = _wide_workload()
    return [
        _col(
            "Containers",
            lambda o, n: containers.cell(_job_template_wide(o), n),
            priority=1,
            desc=containers.description,
        ),
        _col(
            "Images",
            lambda o, n: images.cell(_job_template_wide(o), n),
            priority=1,
            desc=images.description,
        ),
        _col(
            "Selector",
            lambda o, n: selector.cell(_job_template_wide(o), n),
            priority=1,
            desc=selector.description,
        ),
    ]


def _cronjob_columns() -> list[Column]:
    return [
        name_column(),
        _col("Schedule", lambda o, _n: _spec(o).get("schedule", ""), desc="The schedule."),
        _col(
            "Timezone",
            lambda o, _n: _spec(o).get("timeZone") or NONE,
            desc="The time zone the schedule runs in.",
        ),
        _col(
            "Suspend",
            lambda o, _n: "True" if _spec(o).get("suspend") else "False",
            type_="boolean",
            desc="Whether the cron job is suspended.",
        ),
        _col(
            "Active",
            lambda o, _n: len(as_array(_status(o).get("active"))),
            type_="integer",
            desc="Number of active jobs.",
        ),
        _col(
            "Last Schedule",
            lambda o, n: (
                since(_status(o).get("lastScheduleTime"), n)
                if _status(o).get("lastScheduleTime")
                else NONE
            ),
            desc="When the last job was scheduled.",
        ),
        _age_column(),
        *_cron_wide(),
    ]


def _rc_columns() -> list[Column]:
    return [
        name_column(),
        _col(
            "Desired", lambda o, _n: _replicas(o), type_="integer", desc="Number of desired pods."
        ),
        _col("Current", _status_int("replicas"), type_="integer", desc="Number of actual pods."),
        _col("Ready", _status_int("readyReplicas"), type_="integer", desc="Number of pods ready."),
        _age_column(),
        *_wide_workload()[:2],
        _col(
            "Selector",
            lambda o, _n: (
                ",".join(f"{k}={v}" for k, v in as_object(_spec(o).get("selector")).items()) or NONE
            ),
            priority=1,
            desc="Label selector for pods.",
        ),
    ]


def _ingress_hosts(obj: dict, _now: datetime) -> str:
    hosts = [as_object(r).get("host") for r in as_array(_spec(obj).get("rules"))]
    return ",".join(h for h in hosts if h) or "*"


def _ingress_address(obj: dict, _now: datetime) -> str:
    found = [
        as_object(i).get("ip") or as_object(i).get("hostname") or ""
        for i in as_array(as_object(_status(obj).get("loadBalancer")).get("ingress"))
    ]
    return ",".join(f for f in found if f)


def _ingress_columns() -> list[Column]:
    return [
        name_column(),
        _col(
            "Class",
            lambda o, _n: _spec(o).get("ingressClassName") or NONE,
            desc="The name of the IngressClass resource.",
        ),
        _col("Hosts", _ingress_hosts, desc="Hosts that incoming requests are matched against."),
        _col("Address", _ingress_address, desc="Address is a list containing ingress points."),
        _col(
            "Ports",
            lambda o, _n: "80, 443" if as_array(_spec(o).get("tls")) else "80",
            desc="Ports of TLS configurations that open.",
        ),
        _age_column(),
    ]


def _apiservice_service(obj: dict, _now: datetime) -> str:
    service = as_object(_spec(obj).get("service"))
    if not service:
        return "Local"
    return f"{service.get('namespace', '')}/{service.get('name', '')}"


def _apiservice_available(obj: dict, _now: datetime) -> str:
    for condition in as_array(_status(obj).get("conditions")):
        condition = as_object(condition)
        if condition.get("type") == "Available":
            if condition.get("status") == "True":
                return "True"
            return f"{condition.get('status', 'Unknown')} ({condition.get('reason', '')})"
    return "Unknown"


def _apiservice_columns() -> list[Column]:
    return [
        name_column(),
        _col("Service", _apiservice_service, desc="The reference to the service that hosts it."),
        _col("Available", _apiservice_available, desc="Whether it is available."),
        _age_column(),
    ]


BATCH_PRINTERS: dict[tuple[str, str], list[Column]] = {
    ("batch", "Job"): _job_columns(),
    ("batch", "CronJob"): _cronjob_columns(),
    ("", "ReplicationController"): _rc_columns(),
    ("networking.k8s.io", "Ingress"): _ingress_columns(),
    ("apiregistration.k8s.io", "APIService"): _apiservice_columns(),
}

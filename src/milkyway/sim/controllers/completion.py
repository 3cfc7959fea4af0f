"""Pods that run to completion: a simulated container of a pod with ``restartPolicy: Never``
or ``OnFailure`` (a Job's pods) exits after a simulated run time, as KWOK's pod-complete
stage does.

Two annotations on the pod (a Job passes them on from its template) steer the run, so
tests and demos can make pods fail:

* ``sim.milkyway.io/run-seconds``: how long the containers run (default: the
  ``running`` stage delay of the control plane).
* ``sim.milkyway.io/exit-code``: the containers' exit code (default ``0``). A non-zero
  code fails a ``Never`` pod (phase ``Failed``); an ``OnFailure`` pod's containers are
  restarted, each restart counted in ``restartCount``, as the kubelet does.
"""

from __future__ import annotations

from milkyway.sim.controllers.objects import Obj, annotations_of
from milkyway.sim.controllers.podstatus import PodRuntime

RUN_SECONDS = "sim.milkyway.io/run-seconds"
EXIT_CODE = "sim.milkyway.io/exit-code"
_RUNS_TO_COMPLETION = ("Never", "OnFailure")


def runs_to_completion(pod: Obj) -> bool:
    return (pod.get("spec") or {}).get("restartPolicy") in _RUNS_TO_COMPLETION


def run_seconds(pod: Obj, default: float) -> float:
    """The pod's simulated run time; a malformed annotation falls back to ``default``."""
    raw = annotations_of(pod).get(RUN_SECONDS)
    try:
        return max(0.0, float(raw)) if raw is not None else default
    except ValueError:
        return default


def exit_code(pod: Obj) -> int:
    raw = annotations_of(pod).get(EXIT_CODE, "0")
    try:
        return int(raw)
    except ValueError:
        return 1


def finish(pod: Obj, runtime: PodRuntime, stamp: str) -> bool:
    """The containers exit with the pod's exit code at ``stamp``.

    Returns True when the pod is done (phase Succeeded or Failed); False when an
    ``OnFailure`` pod's failed containers were restarted and run again.
    """
    code = exit_code(pod)
    terminated = {
        "exitCode": code,
        "reason": "Completed" if code == 0 else "Error",
        "finishedAt": stamp,
    }
    restart = code != 0 and (pod.get("spec") or {}).get("restartPolicy") == "OnFailure"
    for container in runtime.containers:
        state = {**terminated, "startedAt": container.started_at or stamp}
        container.ready = False
        if restart:
            container.last_terminated = state
            container.restart_count += 1
            container.started_at = stamp
        else:
            container.terminated = state
    if restart:
        return False
    runtime.phase = "Succeeded" if code == 0 else "Failed"
    return True

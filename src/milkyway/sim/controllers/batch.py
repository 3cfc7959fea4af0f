"""Shells of the Job and CronJob controllers.

Each maps watch events to the keys of the owning object (via the informers' owner index)
and on reconcile hands its pure core the objects that owner controls.
"""

from __future__ import annotations

from collections.abc import Hashable

from milkyway.sim.controllers import cronjob, job
from milkyway.sim.controllers.actions import Action
from milkyway.sim.controllers.objects import Obj, controller_of, key_of, namespace_of, uid_of
from milkyway.sim.controllers.runtime import ControlPlane

_JOBS = "batch/v1/jobs"
_CRONJOBS = "batch/v1/cronjobs"


def _wake_owner(
    plane: ControlPlane, controller: str, obj: Obj | None, kind: str, resource: str
) -> None:
    if obj is None:
        return
    ref = controller_of(obj)
    if not ref or ref.get("kind") != kind:
        return
    owner = plane.get(resource, namespace_of(obj), ref.get("name", ""))
    if owner is not None and uid_of(owner) == ref.get("uid"):
        plane.enqueue(controller, key_of(owner))


class JobController:
    """Runs each Job's pods to completion (see :mod:`job`)."""

    name = "job"

    def setup(self, plane: ControlPlane) -> None:
        self.plane = plane
        plane.informer(_JOBS).on_change(
            lambda _t, old, new: plane.enqueue(self.name, key_of((new or old) or {}))
        )
        plane.pods.on_change(
            lambda _t, old, new: _wake_owner(plane, self.name, new or old, "Job", _JOBS)
        )

    def reconcile(self, key: Hashable) -> list[Action]:
        ns, name = key  # type: ignore[misc]
        obj = self.plane.get(_JOBS, ns, name)
        if obj is None:
            return []
        pods = self.plane.pods.by_index("owner", uid_of(obj))
        view = job.JobView(obj, pods, backoff=self.plane.config.crash_backoff)
        return job.reconcile_job(view, self.plane.now())


class CronJobController:
    """Starts a Job at each scheduled time of a CronJob (see :mod:`cronjob`)."""

    name = "cronjob"

    def setup(self, plane: ControlPlane) -> None:
        self.plane = plane
        plane.informer(_CRONJOBS).on_change(
            lambda _t, old, new: plane.enqueue(self.name, key_of((new or old) or {}))
        )
        plane.informer(_JOBS).on_change(
            lambda _t, old, new: _wake_owner(plane, self.name, new or old, "CronJob", _CRONJOBS)
        )

    def reconcile(self, key: Hashable) -> list[Action]:
        ns, name = key  # type: ignore[misc]
        obj = self.plane.get(_CRONJOBS, ns, name)
        if obj is None:
            return []
        jobs = self.plane.informer(_JOBS).by_index("owner", uid_of(obj))
        return cronjob.reconcile_cronjob(cronjob.CronJobView(obj, jobs), self.plane.now())
